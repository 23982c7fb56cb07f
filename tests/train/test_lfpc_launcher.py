"""``bash examples/lfpc_qwen2_5_vl_7b.sh`` as a user runs it: the dry run plans selection, exports, Stage I, the merge
and Stage II on synth-vqa data; bad input is one failed check (or one error line) before any model loads.

The fixture is built honestly: ``locus-data synth-vqa`` writes the manifest; the selection output that
``locus-data select-resolution`` would write is stood in for by the same manifest with each original downsampled to
half its size as ``view_image`` (the launcher then skips selection, as on a re-run)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from locus_train.prompt_report import report_path
from tests.testing_utils import require_easyr1

from .conftest import REPO_ROOT


pytestmark = require_easyr1  # the launcher's preflight checks the installed EasyR1's commit
LAUNCHER = REPO_ROOT / "examples/lfpc_qwen2_5_vl_7b.sh"


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    """A synth-vqa manifest of 3 questions (3-4K originals, nested boxes)."""
    from locus_data.synth_vqa import synth_vqa

    return synth_vqa(tmp_path_factory.mktemp("synth") / "vqa", 3, seed=0, progress=False)


def selected(manifest: Path, out: Path, scale: float = 0.5) -> Path:
    """``out/selection/manifest.jsonl``: ``manifest`` with each original resized by ``scale`` as its view image."""
    from PIL import Image

    folder = out / "selection"
    (folder / "views").mkdir(parents=True, exist_ok=True)
    lines = []
    for line in manifest.read_text().splitlines():
        row = json.loads(line)
        original = (manifest.parent / row["image"]).resolve()
        with Image.open(original) as image:
            view = image.resize((round(image.width * scale), round(image.height * scale)))
        view.save(folder / "views" / f"{row['id']}.jpg")
        row["image"], row["view_image"] = str(original), f"views/{row['id']}.jpg"
        lines.append(json.dumps(row))
    path = folder / "manifest.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def without_boxes(manifest: Path, out: Path) -> Path:
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    for row in rows:
        row.pop("boxes", None)
        row["image"] = str((manifest.parent / row["image"]).resolve())
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return out


def launch(*argv: str, **env: str) -> subprocess.CompletedProcess:
    base = {"PATH": f"{os.path.dirname(sys.executable)}:/usr/bin:/bin", "HOME": env.pop("HOME"), "HF_HUB_OFFLINE": "1"}
    return subprocess.run(["bash", str(LAUNCHER), *argv], capture_output=True, text=True, env={**base, **env})


@pytest.fixture
def lfpc_env(synth, tiny_qwen2_5_vl, tmp_path) -> dict[str, str]:
    out = tmp_path / "lfpc"
    selected(synth, out)
    return {
        "HOME": str(tmp_path),
        "MODEL_PATH": str(tiny_qwen2_5_vl),
        "LFPC_DATA": str(synth),
        "LFPC_BOXED_DATA": str(synth),
        "LFPC_OUT": str(out),
    }


@pytest.mark.slow  # ~6 s: both stages' preflight in a fresh process
def test_dry_run_plans_both_stages(lfpc_env, tiny_qwen2_5_vl):
    # every check passes, nothing is written, and each step's command is printed in order with its paths: the
    # selection exists (skipped), the exports, Stage I from MODEL_PATH, the merge of its last checkpoint, Stage II
    # from the merged model
    before = sorted(Path(lfpc_env["LFPC_OUT"]).rglob("*"))
    result = launch("--dry-run", **lfpc_env)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert not [line for line in lines if line.startswith("[FAIL]")]
    assert sorted(Path(lfpc_env["LFPC_OUT"]).rglob("*")) == before  # a dry run writes nothing
    out = Path(lfpc_env["LFPC_OUT"])
    steps = [line for line in lines if line.startswith("-- ")]
    assert [line.split(":")[0] for line in steps] == [
        "-- resolution selection",
        "-- export Stage I data",
        "-- export Stage II data",
        "-- train Stage I",
        "-- merge Stage I",
        "-- train Stage II",
    ]
    assert steps[0] == f"-- resolution selection: {out / 'selection/manifest.jsonl'} exists; skipped"
    assert steps[1].endswith(f"export-lfpc {out / 'selection/manifest.jsonl'} --out {out / 'data/stage1'}")
    assert steps[2].endswith(f"--out {out / 'data/stage2'} --view original --require-boxes")
    stage1 = out / "checkpoints/lfpc_stage1_qwen2_5_vl_7b"
    assert "-m locus_train.easyr1.main config=" + str(REPO_ROOT / "config/lfpc_stage1_qwen2_5_vl_7b.yaml") in steps[3]
    assert f"worker.actor.model.model_path={tiny_qwen2_5_vl}" in steps[3]
    assert f"trainer.save_checkpoint_path={stage1}" in steps[3]
    assert steps[4].endswith(f"scripts/model_merger.py --local_dir {stage1 / 'global_step_80/actor'}")
    assert f"worker.actor.model.model_path={stage1 / 'global_step_80/actor/huggingface'}" in steps[5]
    assert "lfpc_stage2_qwen2_5_vl_7b.yaml" in steps[5] and "compute_score_stage2" in steps[5]
    # Stage II's model is Stage I's planned output: not required to exist in a dry run
    assert any(line.startswith("[skip] model:") and "Stage I's planned output" in line for line in lines)
    assert "[ ok ] selection:" in result.stdout and "3 with a selected view" in result.stdout


@pytest.mark.slow  # ~5 s each: the launcher in a fresh process (one interpreter start per case)
@pytest.mark.parametrize(
    "case", ["stage2_without_boxes", "max_turns_0", "stage2_without_stage1", "view_larger_than_original", "no_data"]
)
def test_bad_input_is_one_line_before_any_model_loads(case, lfpc_env, synth, tmp_path):
    # each mistake is named on one line with its fix, exit status 1, no traceback, nothing run
    argv, env = ["--dry-run"], dict(lfpc_env)
    if case == "stage2_without_boxes":
        env["LFPC_BOXED_DATA"] = str(without_boxes(synth, tmp_path / "unboxed/manifest.jsonl"))
        expected = "[FAIL] LFPC_BOXED_DATA: "
        message = "3 of 3 questions have no boxes (e.g. 'synthvqa_00000'); a Stage II recipe (compute_score_stage2)"
    elif case == "max_turns_0":
        argv.append("lfpc.max_turns=0")
        expected, message = "[FAIL] config: ", "lfpc.max_turns must be a positive integer (assistant turns"
    elif case == "stage2_without_stage1":
        argv = ["--stage", "2"]  # a real launch: Stage I's merged checkpoint is required
        expected, message = "lfpc: error: ", "Stage II starts from Stage I's merged checkpoint, and"
    elif case == "view_larger_than_original":
        selected(synth, Path(env["LFPC_OUT"]), scale=1.25)  # a "selection" that upscaled
        expected, message = "[FAIL] selection: ", "view image larger than the original: "
    else:
        del env["LFPC_DATA"]
        expected, message = "[FAIL] LFPC_DATA: ", "LFPC_DATA is not set; point it at a VQA manifest"
    result = launch(*argv, **env)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if line.startswith(("[FAIL]", "lfpc: error:"))]
    assert len(errors) == 1 and errors[0].startswith(expected) and message in errors[0], output
    assert "-- train" not in output  # nothing planned or run past the failure


# small enough for 2 synth-vqa training rows on the recipes' 8 GPUs; 4,096 prompt tokens because the tiny test
# tokenizer spells the agent's system prompt byte by byte (~1,300 tokens; Qwen's ~300)
SMALL = ["data.rollout_batch_size=2", "worker.actor.global_batch_size=2", "data.max_prompt_length=4096"]


@pytest.fixture
def real_launch(lfpc_env, monkeypatch):
    """The launcher's pipeline in this process as a real launch, up to the training command: GPUs counted as there
    (none here) and each stage's EasyR1 command recorded instead of run (it needs GPUs and Ray)."""
    import locus_train.preflight
    from locus_train.preflight import lfpc
    from locus_train.preflight.checks import Check

    for key, value in lfpc_env.items():
        monkeypatch.setenv(key, value)
    gpus = lambda plan: Check("GPUs", True, "8 (counted as there for this test)")  # noqa: E731
    monkeypatch.setattr(lfpc, "check_gpus", gpus)  # the launcher's count before selection
    monkeypatch.setattr(locus_train.preflight, "check_gpus", gpus)  # each stage's, before it trains
    launched = []
    monkeypatch.setattr(lfpc, "run_training", lambda command, cwd: launched.append(command) or 0)
    recipe = str(REPO_ROOT / "config/lfpc_stage1_qwen2_5_vl_7b.yaml")
    return lambda *argv: (lfpc.main(["--recipe", recipe, *argv, *SMALL]), launched)


# ~7 s: real exports, validation and prompt measurement with the tiny model
def test_a_real_stage1_launch_exports_checks_and_launches(real_launch, lfpc_env, capsys):
    # selection exists (skipped); the Stage I export is written by the real command, then validated, counted and
    # measured with the system prompt before the EasyR1 command is launched
    status, launched = real_launch("--stage", "1")
    out = capsys.readouterr().out
    assert status == 0, out
    data = Path(lfpc_env["LFPC_OUT"]) / "data/stage1"
    assert (data / "export.json").is_file() and report_path(data).is_file()  # the one report name
    for name in ("dataset", "train size", "prompt lengths"):
        assert any(line.startswith(f"[ ok ] {name}:") for line in out.splitlines()), (name, out)
    assert len(launched) == 1 and launched[0][1:3] == ["-m", "locus_train.easyr1.main"]
    assert f"data.train_files={data / 'train.parquet'}" in launched[0] and "data.rollout_batch_size=2" in launched[0]


# ~7 s
def test_a_real_stage2_launch_starts_from_the_merged_stage1_model(real_launch, lfpc_env, tiny_qwen2_5_vl, capsys):
    # with Stage I's merged model where the merge writes it, --stage 2 exports the boxed set (original views,
    # boxes required), checks it and launches Stage II from that model
    import shutil

    merged = Path(lfpc_env["LFPC_OUT"]) / "checkpoints/lfpc_stage1_qwen2_5_vl_7b/global_step_80/actor/huggingface"
    shutil.copytree(tiny_qwen2_5_vl, merged)
    status, launched = real_launch("--stage", "2")
    out = capsys.readouterr().out
    assert status == 0, out
    export = json.loads((Path(lfpc_env["LFPC_OUT"]) / "data/stage2/export.json").read_text())
    assert export["require_boxes"] is True
    assert any(line.startswith("[ ok ] model:") and str(merged) in line for line in out.splitlines()), out
    assert len(launched) == 1 and f"worker.actor.model.model_path={merged}" in launched[0]
    assert any(item.endswith(":compute_score_stage2") for item in launched[0])
