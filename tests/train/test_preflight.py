"""Preflight's checks that need no GPU, on a CPU machine without EasyR1."""

import importlib.metadata
import json
import subprocess

import pytest

from locus_data.problems import CUE_SEARCH_PROBLEM
from locus_train.preflight import (
    PINNED_COMMIT,
    check_easyr1,
    check_reward,
    main,
    make_plan,
    parse_args,
    preflight,
)

from .conftest import REPO_ROOT, write_tiny_dataset


RECIPE = "config/locus_qwen2_5_vl_7b.yaml"


class FakeDistribution:
    """importlib.metadata.Distribution stand-in: a version and a direct_url.json."""

    def __init__(self, direct_url: dict | None, version: str = "0.3.3.dev0"):
        self.version, self._direct_url = version, direct_url

    def read_text(self, name: str) -> str | None:
        return json.dumps(self._direct_url) if name == "direct_url.json" and self._direct_url else None


def find(distribution):
    def lookup(name):
        if distribution is None:
            raise importlib.metadata.PackageNotFoundError(name)
        return distribution

    return lookup


def plan_for(tmp_path, *argv, data_dir=None):
    args = parse_args(["--recipe", RECIPE, "--data-dir", str(data_dir or tmp_path / "data"), "--dry-run", *argv])
    return make_plan(args)


def local_checkpoint(tmp_path):
    """A folder the model check accepts as a checkpoint (the recipe's hub id is not in this machine's cache)."""
    model = tmp_path / "model"
    model.mkdir(exist_ok=True)
    (model / "config.json").write_text("{}")
    return model


def ok(checks, name):
    return next(check for check in checks if check.name == name).ok


def message(checks, name):
    return next(check for check in checks if check.name == name).message


def test_easyr1_absent_is_reported_with_the_install_command():
    # CI has no EasyR1: the check must fail and say how to install the pinned commit
    check = check_easyr1(find(None))
    assert check.ok is False and f"EasyR1.git@{PINNED_COMMIT}" in check.message


def test_easyr1_at_the_pinned_commit_passes():
    # pip records the commit of a git install in direct_url.json
    distribution = FakeDistribution(
        {"url": "https://github.com/hiyouga/EasyR1.git", "vcs_info": {"commit_id": PINNED_COMMIT}}
    )
    assert check_easyr1(find(distribution)).ok is True


def test_easyr1_from_the_vendored_archive_passes():
    # CI installs ../shared/vendor/easyr1-b44b311.tar.gz: no git inside, pip records only the archive's sha256
    digest = "424dee2aa3ed46243d1bdb4c78be05083675ce6f3c0f4458b24ad829d9a628f6"
    archive = {"url": "file:///x/easyr1-b44b311.tar.gz", "archive_info": {"hashes": {"sha256": digest}}}
    assert check_easyr1(find(FakeDistribution(archive))).ok is True
    # another archive is not taken on trust: its commit cannot be told
    archive["archive_info"] = {"hash": "sha256=" + "0" * 64}
    assert check_easyr1(find(FakeDistribution(archive))).ok is False


def test_easyr1_at_another_commit_fails():
    # an older EasyR1 lacks the vLLM encoder-cache leak fix and may reject our keys
    distribution = FakeDistribution(
        {"url": "https://github.com/hiyouga/EasyR1.git", "vcs_info": {"commit_id": "0" * 40}}
    )
    check = check_easyr1(find(distribution))
    assert check.ok is False and "pinned to" in check.message


def test_registry_verl_without_commit_fails():
    # `pip install verl` is volcengine/verl under the same name: no commit to check
    check = check_easyr1(find(FakeDistribution(None, version="0.9.1")))
    assert check.ok is False and "volcengine" in check.message


def test_dry_run_with_a_built_dataset_passes_every_non_gpu_check(tmp_path, without_easyr1):
    # a valid dataset and a fake `locus-data validate` that accepts it: only the EasyR1 install may fail
    data = write_tiny_dataset(tmp_path / "data", CUE_SEARCH_PROBLEM, [(640, 480), (40, 32)], rows=128)
    plan = plan_for(tmp_path, "--model-path", str(local_checkpoint(tmp_path)), data_dir=data)
    checks, command = preflight(plan, validate=lambda d, n: subprocess.CompletedProcess([], 0, "ok", ""))
    assert [c.name for c in checks if c.ok is False] == ["EasyR1"]
    assert ok(checks, "config") and ok(checks, "files") and ok(checks, "dataset") and ok(checks, "reward")
    assert ok(checks, "train size") and ok(checks, "GPUs") is None  # no GPU check in a dry run
    # absolute paths for everything EasyR1 opens, the user's overrides last
    assert f"data.train_files={data / 'train.parquet'}" in command
    assert f"data.format_prompt={REPO_ROOT / 'locus_train/prompts/cue_search_qwen2_5_vl.jinja'}" in command
    assert f"worker.reward.reward_function={REPO_ROOT / 'locus_reward/cue_search.py'}:compute_score" in command
    assert command[1:4] == ["-m", "verl.trainer.main", f"config={REPO_ROOT / RECIPE}"]


def test_missing_dataset_without_coco_root_fails_with_the_build_command(tmp_path):
    # nothing to build from: the message names COCO_ROOT and the exact build command
    checks, _ = preflight(plan_for(tmp_path, "--coco-root", str(tmp_path / "nope")))
    assert ok(checks, "dataset") is False
    assert "COCO_ROOT" in message(checks, "dataset") and "locus-data build --config" in message(checks, "dataset")


def test_missing_dataset_in_dry_run_is_not_built(tmp_path):
    # dry run changes nothing on disk: it reports the command it would run
    (tmp_path / "coco").mkdir()
    checks, _ = preflight(plan_for(tmp_path, "--coco-root", str(tmp_path / "coco")))
    assert ok(checks, "dataset") is None and "would run: locus-data build" in message(checks, "dataset")
    assert not (tmp_path / "data").exists()


def test_invalid_dataset_fails_with_the_validator_output(tmp_path):
    # `locus-data validate` exits 1: its last lines are shown with the rebuild command
    data = write_tiny_dataset(tmp_path / "data", CUE_SEARCH_PROBLEM, [(640, 480), (40, 32)], rows=2)
    failing = lambda d, n: subprocess.CompletedProcess([], 1, "row 3: answer box outside the image", "")  # noqa: E731
    checks, _ = preflight(plan_for(tmp_path, data_dir=data), validate=failing)
    assert ok(checks, "dataset") is False and "answer box outside the image" in message(checks, "dataset")


def test_too_few_rows_for_one_rollout_batch(tmp_path):
    # EasyR1 drops the last partial batch: 2 rows < 128 prompts would mean zero training steps
    data = write_tiny_dataset(tmp_path / "data", CUE_SEARCH_PROBLEM, [(640, 480), (40, 32)], rows=2)
    checks, _ = preflight(plan_for(tmp_path, data_dir=data), validate=lambda d, n: subprocess.CompletedProcess([], 0))
    assert ok(checks, "train size") is False and "zero steps" in message(checks, "train size")


@pytest.mark.parametrize(
    "override, text",
    [
        ("worker.actor.micro_batch_size=2", "not an EasyR1 config key"),  # unknown key
        ("data.rollout_batch_size=96", "must be divisible"),  # 96 % 128
        ("worker.rollout.limit_images=1", "limit_images"),  # LOCUS prompts hold two images
    ],
)
def test_bad_overrides_fail_the_config_check(tmp_path, override, text):
    checks, _ = preflight(plan_for(tmp_path, override))
    assert ok(checks, "config") is False and text in message(checks, "config")


def test_missing_format_prompt_is_caught_before_easyr1_drops_it(tmp_path):
    # EasyR1 would print "not found" and train without the format prompt; preflight refuses
    checks, _ = preflight(plan_for(tmp_path, "data.format_prompt=/nope/missing.jinja"))
    assert ok(checks, "files") is False and "/nope/missing.jinja does not exist" in message(checks, "files")


def test_gpu_count_is_checked_outside_dry_run(tmp_path):
    # this CI machine has no GPU: a real launch must stop before EasyR1 starts Ray
    args = parse_args(["--recipe", RECIPE, "--data-dir", str(tmp_path / "data")])
    from locus_train.preflight import check_gpus

    assert check_gpus(make_plan(args)).ok is False


def test_ablation_is_composed_named_and_data_redirected(tmp_path):
    # a data ablation moves the dataset folder and data config; the run name gets the ablation's name
    args = parse_args(["--recipe", RECIPE, "--ablation", "config/ablations/tiny_only.yaml", "--dry-run"])
    plan = make_plan(args)
    assert plan.data_dir == REPO_ROOT / "data/locus_cue_tiny_only"
    assert plan.data_config == REPO_ROOT / "config/data/tiny_only.yaml"
    _, command = preflight(plan)
    assert "trainer.experiment_name=locus_qwen2_5_vl_7b_tiny_only" in command
    assert f"config={REPO_ROOT / 'runs/locus_qwen2_5_vl_7b_tiny_only/easyr1_config.yaml'}" in command


def test_reward_check_catches_a_wrong_frame():
    # a reward told the wrong frame gives a perfect Qwen2.5-VL box a low IoU: preflight must notice
    from locus_train.easyr1_config import compose, load_schema, resolve

    raw, _ = compose(REPO_ROOT / RECIPE)
    cfg = resolve(raw, load_schema())
    cfg["worker"]["reward"]["reward_function"] = f"{REPO_ROOT / 'locus_reward/cue_search.py'}:compute_score"
    assert check_reward(cfg).ok is True
    cfg["worker"]["reward"]["reward_function_kwargs"]["think_prefilled"] = True  # prefilled: "<think>" is malformed
    assert check_reward(cfg).ok is True  # the check writes the response the way the recipe's model would
    cfg["worker"]["reward"]["reward_function"] = "/nope/reward.py:compute_score"
    assert check_reward(cfg).ok is False


def test_main_dry_run_prints_the_command_and_fails_without_easyr1(tmp_path, capsys, without_easyr1):
    # the launcher's exit status: 1 while any check fails, and the command is shown anyway
    code = main(["--recipe", RECIPE, "--data-dir", str(tmp_path / "data"), "--dry-run"])
    out = capsys.readouterr()
    assert code == 1 and "[FAIL] EasyR1" in out.out and "verl.trainer.main" in out.out


def test_prompt_length_report_of_a_rebuilt_dataset_is_stale(tmp_path):
    # same path, same settings, but train.parquet was rebuilt with other rows: the old lengths prove nothing
    from locus_train.easyr1_config import compose, load_schema, resolve
    from locus_train.preflight import check_prompt_lengths, path_overrides, prompt_report_path
    from locus_train.prompt_report import PromptLengthReport, SplitLengths, sha256

    data = write_tiny_dataset(tmp_path / "data", CUE_SEARCH_PROBLEM, [(640, 480), (40, 32)], rows=4)
    plan = plan_for(tmp_path, data_dir=data)
    overrides = path_overrides(compose(REPO_ROOT / RECIPE)[0], plan)
    cfg = resolve(compose(REPO_ROOT / RECIPE, overrides=overrides)[0], load_schema())
    prompt = (REPO_ROOT / "locus_train/prompts/cue_search_qwen2_5_vl.jinja").read_text()
    split = SplitLengths.of("measured.parquet", [100] * 4, cfg["data"]["max_prompt_length"])
    report = PromptLengthReport(
        model=plan.model_path, processor_class="Qwen2_5_VLProcessor", format_prompt=None,
        format_prompt_sha256=sha256(prompt), min_pixels=cfg["data"]["min_pixels"],
        max_pixels=cfg["data"]["max_pixels"], max_prompt_length=cfg["data"]["max_prompt_length"], limit=None,
        method="arithmetic", splits={"train": split, "val": split},
    )  # fmt: skip
    report.write(prompt_report_path(plan))
    assert check_prompt_lengths(cfg, plan).ok is True  # the control: the report matches the files
    write_tiny_dataset(data, CUE_SEARCH_PROBLEM, [(640, 480), (40, 32)], rows=6)  # rebuilt in place
    check = check_prompt_lengths(cfg, plan)
    assert check.ok is False and "train rows" in check.message


def test_a_non_numeric_gpu_count_is_a_usage_error(monkeypatch, capsys):
    # NNODES=two from the environment: argparse's one-line usage error (exit 2), not a ValueError traceback
    monkeypatch.setenv("NNODES", "two")
    with pytest.raises(SystemExit) as stop:
        parse_args(["--recipe", RECIPE])
    assert stop.value.code == 2 and "invalid int value: 'two'" in capsys.readouterr().err
