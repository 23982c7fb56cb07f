"""The launcher's dry run against the installed EasyR1: every check passes and the exact EasyR1 command is printed."""

import os
import shlex
import subprocess
import sys

import pytest

from locus_train.easyr1_config import compose, load_schema, resolve
from locus_train.preflight import PINNED_COMMIT, config_file, make_plan, measure_command, parse_args, path_overrides
from tests.testing_utils import require_easyr1

from ..conftest import ABLATIONS, REPO_ROOT


pytestmark = require_easyr1

RECIPE = REPO_ROOT / "config/locus_qwen2_5_vl_7b.yaml"


@pytest.fixture(scope="module")
def launch_env(demo_data, tiny_qwen2_5_vl, tmp_path_factory) -> dict[str, str]:
    """The launcher's environment: tiny model, demo data built for it, its prompt lengths measured offline."""
    home = tmp_path_factory.mktemp("home")
    env = {
        "PATH": f"{os.path.dirname(sys.executable)}:/usr/bin:/bin",
        "HOME": str(home),
        "MODEL_PATH": str(tiny_qwen2_5_vl),
        "DATA_DIR": str(demo_data),
        "HF_HUB_OFFLINE": "1",
    }
    # the recipe turns EasyR1's startup filter off, so preflight wants the offline report: make it as it says
    plan = make_plan(parse_args(["--recipe", str(RECIPE), "--data-dir", str(demo_data), "--dry-run"]))
    plan.model_path = str(tiny_qwen2_5_vl)
    raw, _ = compose(RECIPE, [], path_overrides(compose(RECIPE)[0], plan))
    subprocess.run(measure_command(resolve(raw, load_schema()), plan), check=True, env=env)
    return env


def expected_command(python: str, ablation, demo_data, model) -> str:
    argv = ["--recipe", str(RECIPE), "--data-dir", str(demo_data), "--model-path", str(model), "--dry-run"]
    plan = make_plan(parse_args([*argv, "--ablation", str(ablation) if ablation else ""]))
    overrides = path_overrides(compose(RECIPE, plan.ablations)[0], plan) + ["trainer.total_epochs=2"]
    return shlex.join([python, "-m", "verl.trainer.main", f"config={config_file(plan)}", *overrides])


def assert_all_checks_pass(lines: list[str], skipped: list[str]) -> None:
    assert not [line for line in lines if line.startswith("[FAIL]")], lines
    assert f"[ ok ] EasyR1: verl 0.3.3.dev0 at {PINNED_COMMIT[:12]}" in lines
    assert sorted(line.split(":")[0] for line in lines if line.startswith("[skip]")) == skipped, lines
    for name in ("config", "files", "dataset", "train size", "prompt lengths", "reward"):
        assert any(line.startswith(f"[ ok ] {name}:") for line in lines), (name, lines)


@pytest.mark.slow  # ~15 s: the launcher script end to end, with its module-scoped data
def test_launcher_dry_run_passes_every_check_with_easyr1(launch_env, demo_data, tiny_qwen2_5_vl):
    # the real launcher in a fresh process: with the pinned EasyR1 installed nothing fails, and the printed command
    # is the one a real launch execs
    result = subprocess.run(
        ["bash", str(REPO_ROOT / "examples/locus_qwen2_5_vl_7b.sh"), "--dry-run", "trainer.total_epochs=2"],
        capture_output=True,
        text=True,
        env=launch_env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    # GPUs: a dry run counts none. PPOConfig: preflight builds it in-process only where vLLM is importable; the
    # in-process runs below (with the import stand-ins) and test_config.py build it with EasyR1's PPOConfig
    assert_all_checks_pass(lines, ["[skip] EasyR1 PPOConfig", "[skip] GPUs"])
    python3 = os.path.join(os.path.dirname(sys.executable), "python3")  # what the launcher's `exec python3` runs
    assert "command (dry run, not launched): " + expected_command(python3, None, demo_data, tiny_qwen2_5_vl) in lines


@pytest.mark.parametrize("ablation", [None, *ABLATIONS], ids=lambda p: p.stem if p else "recipe")
def test_launch_preflight_with_each_overlay_passes_every_check(
    ablation, launch_env, demo_data, tiny_qwen2_5_vl, monkeypatch, capsys
):
    # what launch.sh execs (`python3 -m locus_train.preflight --recipe ... --task cue_search`), run in this process
    # (one interpreter start instead of eleven) with the launcher's environment and LOCUS_ABLATION per overlay
    from locus_train import preflight

    for key, value in {**launch_env, "LOCUS_ABLATION": str(ablation) if ablation else ""}.items():
        monkeypatch.setenv(key, value)
    argv = ["--recipe", str(RECIPE), "--task", "cue_search", "--dry-run", "trainer.total_epochs=2"]
    assert preflight.main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert_all_checks_pass(lines, ["[skip] GPUs"])
    assert any(line.startswith("[ ok ] EasyR1 PPOConfig:") for line in lines)
    assert (
        "command (dry run, not launched): " + expected_command(sys.executable, ablation, demo_data, tiny_qwen2_5_vl)
        in lines
    )
