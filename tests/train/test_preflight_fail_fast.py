"""Preflight fails fast: every cheap check is reported before anything is built or measured, with no network."""

import subprocess
import sys
import time

from locus_train.preflight import check_model, make_plan, parse_args, preflight

from .conftest import REPO_ROOT


RECIPE = "config/locus_qwen2_5_vl_7b.yaml"


def plan_for(tmp_path, *argv, dry_run=True):
    args = ["--recipe", RECIPE, "--data-dir", str(tmp_path / "data"), *(["--dry-run"] if dry_run else []), *argv]
    return make_plan(parse_args(args))


def by_name(checks):
    return {check.name: check for check in checks}


def never_validate(data_dir, num_images):
    raise AssertionError("validate ran although a cheap check had failed")


def hub_cache(root, repo_id: str, files: dict[str, str]):
    """A Hugging Face hub cache holding one snapshot of ``repo_id`` (the layout huggingface_hub writes)."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = root / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for name, text in files.items():
        (snapshot / name).write_text(text)
    return snapshot


def use_hub_cache(monkeypatch, path):
    # huggingface_hub reads HF_HUB_CACHE once at import (transformers imported it already): set its constant
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(path))


def test_known_failures_stop_before_building_or_measuring(tmp_path, without_easyr1):
    # a real launch (no --dry-run) with EasyR1 missing and a missing checkpoint: the dataset would be built from
    # COCO_ROOT next, but the cheap failures are already known, so nothing is built and nothing is validated
    (tmp_path / "coco").mkdir()
    plan = plan_for(
        tmp_path, "--model-path", "/nonexistent/ckpt", "--coco-root", str(tmp_path / "coco"), dry_run=False
    )
    reported = []
    checks, _ = preflight(plan, validate=never_validate, report=reported.append)
    checks = by_name(checks)
    assert checks["EasyR1"].ok is False and checks["model"].ok is False
    assert "/nonexistent/ckpt is not a directory" in checks["model"].message
    for name in ("dataset", "train size", "prompt lengths"):
        assert checks[name].ok is None and "not run: fix EasyR1, model" in checks[name].message
    assert not (tmp_path / "data").exists()
    # reported as they finish, the cheap ones first
    names = [check.name for check in reported]
    assert names.index("model") < names.index("dataset") and names[-3:] == ["dataset", "train size", "prompt lengths"]


def test_hub_id_missing_from_the_cache_fails_at_once_without_network(tmp_path, monkeypatch):
    # online mode and an endpoint that never answers: a network lookup would hang in retries; the check must not try
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    use_hub_cache(monkeypatch, tmp_path / "hub")
    monkeypatch.setattr("huggingface_hub.constants.ENDPOINT", "http://10.255.255.1")
    start = time.monotonic()
    check = check_model(plan_for(tmp_path, "--model-path", "Qwen/Qwen2.5-VL-7B-Instruct"))
    assert time.monotonic() - start < 5
    assert check.ok is False and "not in the Hugging Face cache" in check.message
    assert "huggingface-cli download Qwen/Qwen2.5-VL-7B-Instruct" in check.message


def test_hub_id_in_the_cache_resolves_offline(tmp_path, monkeypatch):
    # a hub id already downloaded is as good as a local folder: huggingface_hub's own cache lookup finds it
    snapshot = hub_cache(tmp_path / "hub", "org/tiny-vl", {"config.json": "{}"})
    use_hub_cache(monkeypatch, tmp_path / "hub")
    check = check_model(plan_for(tmp_path, "--model-path", "org/tiny-vl"))
    assert check.ok is True and str(snapshot) in check.message


def test_a_folder_without_config_json_is_not_a_checkpoint(tmp_path):
    # e.g. MODEL_PATH pointing at the parent of the checkpoint
    (tmp_path / "models").mkdir()
    check = check_model(plan_for(tmp_path, "--model-path", str(tmp_path / "models")))
    assert check.ok is False and "no config.json" in check.message


def test_dry_run_checks_the_data_config_and_other_environment_paths(tmp_path):
    # a typo'd LOCUS_DATA_CONFIG used to pass a dry run (only the build would have read it)
    (tmp_path / "coco").mkdir()
    (tmp_path / "data").write_text("not a folder")
    plan = plan_for(tmp_path, "--data-config", str(tmp_path / "locus_defualt.yaml"), "--coco-root", str(tmp_path))
    paths = by_name(preflight(plan)[0])["paths"]
    assert paths.ok is False
    assert f"LOCUS_DATA_CONFIG={tmp_path / 'locus_defualt.yaml'}: data config not found" in paths.message
    assert "DATA_DIR" in paths.message and "is a file" in paths.message


def test_a_bad_key_in_the_data_config_is_caught_in_a_dry_run(tmp_path):
    # the data config is loaded with the builder's own checks, not just looked for
    config = tmp_path / "data.yaml"
    config.write_text("num_train: 10\ntiny_ratoi: 0.5\n")
    paths = by_name(preflight(plan_for(tmp_path, "--data-config", str(config)))[0])["paths"]
    assert paths.ok is False and "tiny_ratoi" in paths.message


def test_launcher_without_the_environment_says_what_to_activate(tmp_path):
    # a python3 that lacks LOCUS' dependencies (site-packages off) used to end in ModuleNotFoundError: omegaconf
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "python3").write_text(f'#!/bin/sh\nexec {sys.executable} -S "$@"\n')
    (shim / "python3").chmod(0o755)
    env = {"PATH": f"{shim}:/usr/bin:/bin", "HOME": str(tmp_path), "DATA_DIR": str(tmp_path / "data")}
    result = subprocess.run(
        ["bash", str(REPO_ROOT / "examples/locus_qwen2_5_vl_7b.sh"), "--dry-run"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "source .venv/bin/activate" in result.stderr and "omegaconf" in result.stderr
