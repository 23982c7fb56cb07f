"""Issue 20 for ``locus-train trl``, the EasyR1 launchers and their preflight, and the docs' CPU recipe line.

As a user hits them: the installed ``locus-train`` / the launcher scripts (each costs a TRL or EasyR1 import, so the
long parametrised lists call the same ``main`` in this process), real tiny checkpoints and datasets, the exit
status, one line naming the key, and the inputs byte-identical afterwards.
"""

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from locus_data.problems import CUE_SEARCH_PROBLEM
from tests.eval.eval_helpers import bomb_png
from tests.testing_utils import installed_command

from .conftest import REPO_ROOT, write_tiny_dataset


DEMO = REPO_ROOT / "config" / "trl" / "locus_tiny_cpu_demo.yaml"


def digest(root: Path) -> str:
    hashed = hashlib.sha256()
    for file in sorted(root.rglob("*")):
        if file.is_file():
            hashed.update(str(file.relative_to(root)).encode() + file.read_bytes())
    return hashed.hexdigest()


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_tiny_dataset(tmp_path_factory.mktemp("rel") / "data", CUE_SEARCH_PROBLEM, [(640, 480), (40, 32)])


def trl_args(model: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return ["--config", str(DEMO), "--check", f"model.path={model}", f"data.dir={data}", f"grpo.output_dir={out}",
            *extra]  # fmt: skip


BAD_VALUES = {
    # (class 5) what `--check` passed although the real run would train nothing, diverge, or fail after the load
    "grpo.max_steps=0": "grpo.max_steps must be >= 1",
    "grpo.num_train_epochs=0": "grpo.num_train_epochs must be > 0",
    "grpo.learning_rate=abc": "grpo.learning_rate must be a number",
    "grpo.learning_rate=-1e-4": "grpo.learning_rate must be > 0",
    "grpo.seed=abc": "grpo.seed must be an integer",
    "grpo.per_device_train_batch_size=0": "grpo.per_device_train_batch_size must be >= 1",
    "grpo.max_completion_length=0": "grpo.max_completion_length must be >= 1",
    "grpo.beta=-0.5": "grpo.beta must be >= 0",
    "grpo.eval_steps=0": "grpo.eval_steps must be > 0",
    "grpo.use_vllm=true": "grpo.use_vllm=true needs vLLM",
    "data.max_train_samples=0": "data.max_train_samples must be >= 1 or null",
    "data.min_pixels=-100": "data.min_pixels must be >= 1 or null",
    "model.dtype=float64x": "model.dtype='float64x' is not one of",
    "model.attn_implementation=magic": "model.attn_implementation='magic' is not one of",
    "model.lora_r=0": "model.lora_r must be >= 1",
    "model.lora_dropout=1.5": "model.lora_dropout must be in [0, 1)",
    "model.lora_target_modules=[nosuchmodule]": "match no module of",
}


@pytest.mark.parametrize("override", BAD_VALUES)
def test_class5_check_catches_what_the_run_would_hit(override, tiny_qwen2_5_vl, data, tmp_path, capsys):
    # each value passed `--check` before; the same checks run when the config loads, so the real run refuses too
    from locus_train.trl.train import main

    if "vllm" in override and __import__("importlib").util.find_spec("vllm") is not None:
        pytest.skip("vLLM is installed here")
    extra = [override, "model.use_peft=true"] if override.startswith("model.lora") else [override]
    assert main(trl_args(tiny_qwen2_5_vl, data, tmp_path / "out", *extra)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("locus-train trl: error: ") and "\n" not in err and BAD_VALUES[override] in err, err
    assert not (tmp_path / "out").exists()


def test_class5_the_installed_command_refuses_before_the_model_loads(tiny_qwen2_5_vl, data, tmp_path):
    # the real run (no --check): learning_rate=abc used to die with a TypeError traceback after the model loaded
    args = trl_args(tiny_qwen2_5_vl, data, tmp_path / "out", "grpo.learning_rate=abc")
    args.remove("--check")
    result = subprocess.run([*installed_command("locus-train"), "trl", *args], capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == "locus-train trl: error: grpo.learning_rate must be a number, got 'abc'"
    assert not (tmp_path / "out").exists()


def test_class7_a_decompression_bomb_row_fails_the_check(tiny_qwen2_5_vl, tmp_path, capsys):
    # a 20000 x 20000 PNG header in row 0 passed --check and would have crashed the run when sampled
    import pyarrow as pa
    import pyarrow.parquet as pq

    from locus_train.trl.train import main

    data = write_tiny_dataset(tmp_path / "bomb", CUE_SEARCH_PROBLEM, [(640, 480), (40, 32)])
    rows = pq.read_table(data / "train.parquet").to_pylist()
    rows[0]["images"][0] = {"bytes": bomb_png(), "path": "bomb.png"}
    pq.write_table(pa.Table.from_pylist(rows), data / "train.parquet")
    assert main(trl_args(tiny_qwen2_5_vl, data, tmp_path / "out")) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"{data / 'train.parquet'} row 0 image 0" in err and "shrink the image" in err


def test_class2_and_3_empty_data_and_an_output_over_the_checkpoint(tiny_qwen2_5_vl, data, tmp_path, capsys):
    from locus_train.trl.train import main

    # grpo.output_dir = model.path would save the trained model over the input checkpoint
    model = shutil.copytree(tiny_qwen2_5_vl, tmp_path / "model")
    before = digest(model)
    assert main(trl_args(model, data, model)) == 2
    assert "grpo.output_dir" in capsys.readouterr().err and digest(model) == before
    # a zero-row split used to end in an IndexError traceback
    empty = write_tiny_dataset(tmp_path / "empty", CUE_SEARCH_PROBLEM, [(640, 480), (40, 32)], rows=0)
    assert main(trl_args(model, empty, tmp_path / "out")) == 2
    assert "has no rows" in capsys.readouterr().err


@pytest.fixture(scope="module")
def preflight_env(data):
    # dry runs need EasyR1's schema only; the 3-row fixture is smaller than the recipes' 128-prompt batch
    return ["--data-dir", str(data), "--dry-run", "data.rollout_batch_size=2", "worker.actor.global_batch_size=2",
            "worker.actor.micro_batch_size_per_device_for_update=1",
            "worker.actor.micro_batch_size_per_device_for_experience=1"]  # fmt: skip


EASYR1_COUNTS = {
    # (class 5, EasyR1) overrides that type-check but make the run do nothing
    "trainer.total_epochs=0": "`trainer.total_epochs` must be >= 1",
    "trainer.max_steps=-1": "`trainer.max_steps` must be >= 1 or null",
    "worker.actor.optim.lr=-1": "`worker.actor.optim.lr` must be > 0",
    "data.max_prompt_length=0": "`data.max_prompt_length` must be >= 1",
}


@pytest.mark.parametrize("override", EASYR1_COUNTS)
def test_class5_preflight_refuses_counts_that_train_nothing(override, tiny_qwen2_5_vl, preflight_env, capsys):
    from locus_train.preflight import main

    recipe = str(REPO_ROOT / "config" / "locus_qwen2_5_vl_7b.yaml")
    assert main(["--recipe", recipe, "--model-path", str(tiny_qwen2_5_vl), *preflight_env, override]) == 1
    failed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[FAIL]")]
    assert any(line.startswith("[FAIL] config: ") and EASYR1_COUNTS[override] in line for line in failed), failed


def test_class4_launcher_refuses_another_familys_checkpoint(tiny_qwen2_5_vl, data, tmp_path):
    # the Qwen3-VL launcher (0-1000 frame) with a Qwen2.5-VL checkpoint passed every check and would have trained
    # against boxes in the wrong frame; the override flag is named in the line, and accepted
    env = {**os.environ, "MODEL_PATH": str(tiny_qwen2_5_vl), "DATA_DIR": str(data), "HOME": str(tmp_path)}
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    launcher = str(REPO_ROOT / "examples" / "locus_qwen3_vl_4b.sh")
    batch = ["data.rollout_batch_size=2", "worker.actor.global_batch_size=2"]
    result = subprocess.run(["bash", launcher, "--dry-run", *batch], capture_output=True, text=True, env=env)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    frame = [line for line in result.stdout.splitlines() if line.startswith("[FAIL] frame: ")]
    assert frame and "qwen2_5_vl checkpoint" in frame[0] and "--allow-frame-mismatch" in frame[0], result.stdout
    result = subprocess.run(
        ["bash", launcher, "--dry-run", "--allow-frame-mismatch", *batch], capture_output=True, text=True, env=env
    )
    assert "[FAIL] frame" not in result.stdout and "[skip] frame: --allow-frame-mismatch" in result.stdout


@pytest.mark.parametrize("recipe", ["config/data/locus_default.yaml", "config/trl/locus_tiny_cpu_demo.yaml"])
def test_class1_preflight_names_a_recipe_of_another_kind(recipe, capsys):
    # a data config or a TRL recipe as --recipe ended in an omegaconf traceback
    from locus_train.preflight import main

    assert main(["--recipe", str(REPO_ROOT / recipe), "--dry-run"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("preflight: ") and "\n" not in err and recipe.split("/")[-1] in err and "recipe" in err


def test_class8_the_documented_cpu_recipe_line_runs(tmp_path, data):
    # docs/trl.md: `make demo`, `python -m locus_train.tiny_model demo/tiny_qwen2_5_vl`, then the --check line. The
    # recipe's relative paths start at the folder above config/, so a copy of config/ in a scratch folder with the
    # demo data there is the checkout after `make demo`
    shutil.copytree(REPO_ROOT / "config", tmp_path / "config")
    shutil.copytree(data, tmp_path / "demo" / "locus_cue")
    lines = [line for line in (REPO_ROOT / "docs" / "trl.md").read_text().splitlines() if "tiny" in line]
    make_model = next(line.split("#")[0].split() for line in lines if "locus_train.tiny_model" in line)
    check = next(line.split("#")[0].split() for line in lines if "locus_tiny_cpu_demo.yaml --check" in line)
    assert make_model[:3] == ["python", "-m", "locus_train.tiny_model"] and check[0] == "locus-train"
    subprocess.run([sys.executable, *make_model[1:]], cwd=tmp_path, check=True, capture_output=True)
    result = subprocess.run(
        [*installed_command("locus-train"), *check[1:]], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0 and result.stdout.startswith("checks passed: "), result.stderr
