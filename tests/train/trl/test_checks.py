"""Bad input fails before the model loads, with one line naming the fix (run through the real CLI entry point).

Every checkpoint here has its weights deleted: had a check let the run through, the failure would be a transformers
error about a missing model file, not the message asserted.
"""

import json
import shutil

import pytest

from locus_data.problems import TEXT_CUE_PROBLEM
from locus_train.trl.train import main

from ..conftest import write_tiny_dataset
from .conftest import DEMO_CONFIG, demo_overrides


@pytest.fixture
def weightless(tiny_qwen2_5_vl, tmp_path):
    """A copy of the tiny checkpoint without its weights: only the checks can run on it."""
    path = shutil.copytree(tiny_qwen2_5_vl, tmp_path / "weightless")
    (path / "model.safetensors").unlink()
    return path


@pytest.fixture
def cue_data(tmp_path):
    from locus_data.problems import CUE_SEARCH_PROBLEM

    return write_tiny_dataset(tmp_path / "cue", CUE_SEARCH_PROBLEM, [(640, 480), (40, 32)], rows=4)


def fails(capsys, overrides, *message):
    assert main(["--config", str(DEMO_CONFIG), *overrides]) == 2
    err = capsys.readouterr().err
    assert err.startswith("locus-train trl: error: ") and len(err.strip().splitlines()) == 1, err
    for part in message:
        assert part in err, err
    return err


def test_checks_pass_on_good_input(weightless, cue_data, tmp_path, capsys):
    # the control: the same files pass --check, so each failure below is caused by its one change
    assert main(["--config", str(DEMO_CONFIG), "--check", *demo_overrides(weightless, cue_data, tmp_path)]) == 0
    assert "checks passed" in capsys.readouterr().out


def test_text_cue_dataset_under_a_visual_cue_config(weightless, tmp_path, capsys):
    # one image per row (locus-data export-text-cue) where the config expects the full image and the cue
    text_cue = write_tiny_dataset(tmp_path / "text", TEXT_CUE_PROBLEM.format(expression="a red disc"), [(640, 480)])
    fails(capsys, demo_overrides(weightless, text_cue, tmp_path), "one image per row", "data.num_images=1")


def test_missing_model_path(cue_data, tmp_path, capsys):
    # a typo in a local path must not turn into a hub lookup or a traceback
    fails(capsys, demo_overrides(tmp_path / "no_such_ckpt", cue_data, tmp_path), "is not a directory")
    fails(capsys, [*demo_overrides(tmp_path, cue_data, tmp_path), "model.path=null"], "model.path is not set")


def test_processor_without_image_tokens(weightless, cue_data, tmp_path, capsys):
    # a tokenizer without <|image_pad|> would feed the model text only: drop the token from the saved tokenizer
    tokenizer = json.loads((weightless / "tokenizer.json").read_text())
    tokenizer["added_tokens"] = [t for t in tokenizer["added_tokens"] if t["content"] != "<|image_pad|>"]
    (weightless / "tokenizer.json").write_text(json.dumps(tokenizer))
    for name in ("added_tokens.json", "tokenizer_config.json", "special_tokens_map.json"):
        file = weightless / name
        if file.is_file():
            file.write_text(file.read_text().replace('"<|image_pad|>"', '"<|unused_pad|>"'))
    fails(capsys, demo_overrides(weightless, cue_data, tmp_path), "no image token", "tokenizer files")


def test_num_generations_must_divide_the_batch(weightless, cue_data, tmp_path, capsys):
    # 8 completions per step cannot form groups of 3
    fails(
        capsys,
        [*demo_overrides(weightless, cue_data, tmp_path), "grpo.num_generations=3"],
        "grpo.num_generations=3 does not divide",
        "per_device_train_batch_size",
    )


def test_frame_and_think_mismatches(weightless, tiny_qwen3_vl_thinking, cue_data, tmp_path, capsys):
    # a Qwen3-VL processor (32-px patches) scored as Qwen2.5-VL would put every box in the wrong frame
    qwen3 = shutil.copytree(tiny_qwen3_vl_thinking, tmp_path / "qwen3")
    (qwen3 / "model.safetensors").unlink()
    fails(
        capsys,
        [*demo_overrides(qwen3, cue_data, tmp_path), "reward.think_prefilled=true"],
        "reward.coord_frame=qwen2_5_vl expects 28-pixel patches",
        "set reward.coord_frame=qwen3_vl",
    )
    # a template that opens <think> with think_prefilled=false would fail the format term on every completion
    fails(
        capsys,
        [*demo_overrides(qwen3, cue_data, tmp_path), "reward.coord_frame=qwen3_vl"],
        "opens <think> itself",
        "reward.think_prefilled=true",
    )


def test_missing_validation_split(weightless, cue_data, tmp_path, capsys):
    # eval_steps with nothing to evaluate would crash at the first evaluation, hours in
    (cue_data / "val.parquet").unlink()
    fails(capsys, demo_overrides(weightless, cue_data, tmp_path), "no validation split")


def test_pixel_limits_with_vllm_rollouts(weightless, cue_data, tmp_path, capsys):
    # TRL starts vLLM from the checkpoint alone: limits set here would reach the update and the reward but not the
    # rollouts, so the boxes would be scored in another frame than the one the model saw
    overrides = demo_overrides(weightless, cue_data, tmp_path, "grpo.use_vllm=true", "data.max_pixels=200704")
    fails(capsys, overrides, "data.min_pixels/data.max_pixels", "use_vllm=false")
