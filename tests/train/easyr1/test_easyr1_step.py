"""``locus-train easyr1-step``: GRPO steps of LFPC Stage I / Stage II and LOCUS recipes through EasyR1's code on CPU,
its batch dump, and the one-line errors for bad input before any model loads."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.testing_utils import require_easyr1

from ..conftest import REPO_ROOT
from .lfpc_rows import write_lfpc_data
from .lfpc_setup import RECIPES


pytestmark = require_easyr1

LOCUS_RECIPE = REPO_ROOT / "config/locus_qwen2_5_vl_7b.yaml"
METRICS = (
    "step",
    "seconds",
    "reward_mean",
    "tool_calls_mean",
    "response_tokens",
    "masked_tool_tokens",
    "policy_loss",
    "grad_norm",
    "max_abs_param_delta",
)
RIGHT = "<think>Red.</think><answer>A</answer>"
WRONG = "<think>Blue.</think><answer>B</answer>"


def zoom(box) -> str:
    arguments = {"bbox_2d": box, "label": "mark"}
    return (
        '<think>Small.</think><tool_call>{"name": "image_zoom_in_tool", "arguments": '
        + json.dumps(arguments)
        + "}</tool_call>"
    )


def replay_file(path: Path) -> Path:
    # every question's first rollout zooms on the mark ([200, 150, 240, 190] of the 640-px original, in the frame
    # of its 252x196 seen view) and answers right, the second answers wrong: each group has a signal to learn from
    lines = []
    for i in range(4):
        lines.append({"id": f"q{i}", "turns": [zoom([79, 61, 95, 77]), RIGHT]})
        lines.append({"id": f"q{i}", "turns": [WRONG]})
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def step(argv: list[str]) -> int:
    from locus_train.easyr1.step import main

    return main(argv)


def read_metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_two_lfpc_stage1_steps_with_hf_generate(lfpc_data, checkpoints, tmp_path):
    # the policy itself generates (a random tiny model: no reward, so no gradient), two full steps are logged
    out = tmp_path / "out"
    argv = ["--config", str(RECIPES[1]), "--model", str(checkpoints["qwen2_5_vl"]), "--data", str(lfpc_data)]
    assert step([*argv, "--steps", "2", "--out", str(out), "--rollout", "hf"]) == 0
    rows = read_metrics(out)
    assert [row["step"] for row in rows] == [1, 2] and all(set(METRICS) <= set(row) for row in rows)
    assert all(row["response_tokens"] > 0 and row["seconds"] > 0 for row in rows)
    assert "reward/rollout_turns" in rows[0] and "reward/accuracy" in rows[0]


def test_two_lfpc_stage2_steps_with_replayed_turns_and_the_batch_dump(lfpc_data, checkpoints, tmp_path):
    # right-with-a-crop vs wrong in every group: Stage II rewards the crop's overlap with the nested boxes, the tool
    # turns are masked out, the update moves the weights; the first batch is written out as it enters the update
    out, dump = tmp_path / "out", tmp_path / "dump"
    argv = ["--config", str(RECIPES[2]), "--model", str(checkpoints["qwen2_5_vl"]), "--data", str(lfpc_data)]
    replay = replay_file(tmp_path / "replay.jsonl")
    argv += ["--steps", "2", "--out", str(out), "--rollout", f"replay:{replay}", "--dump-batch", str(dump)]
    assert step(argv) == 0
    rows = read_metrics(out)
    assert len(rows) == 2
    for row in rows:
        assert row["tool_calls_mean"] == 0.5 and row["reward/rollout_crops"] == 0.5 and row["masked_tool_tokens"] > 0
        assert row["reward/iou"] > 0 and row["reward/grounding"] > 0  # Stage II scores the crop
        assert row["grad_norm"] > 0 and row["max_abs_param_delta"] > 0 and row["policy_loss"] is not None

    import torch
    from PIL import Image

    tensors = torch.load(dump / "batch.pt")
    assert set(tensors) == {
        "input_ids",
        "attention_mask",
        "position_ids",
        "responses",
        "response_mask",
        "image_grid_thw",
    }
    assert tensors["position_ids"].shape[:2] == (4, 4) and tensors["responses"].shape == (4, 1024)
    lines = [json.loads(line) for line in (dump / "rows.jsonl").read_text().splitlines()]
    assert [line["images"] for line in lines] == [2, 1, 2, 1]  # the view, and the zooming rollouts' crop
    assert len(tensors["image_grid_thw"]) == 6
    files = sorted(path.name for path in (dump / "images").iterdir())
    assert files == ["0_0.png", "0_1.png", "1_0.png", "2_0.png", "2_1.png", "3_0.png"]
    assert Image.open(dump / "images/0_1.png").size == (56, 56)  # the crop as the processor gets it: 2x2 tokens
    response = lines[0]["response"]  # decoded with its special tokens, each pad run written once
    assert "<tool_response>\n<|vision_start|><|image_pad|><|vision_end|>Zoomed in" in response
    assert response.endswith("<answer>A</answer><|im_end|>")
    assert lines[0]["reward"] > 2.2 and lines[1]["reward"] == pytest.approx(0.2)
    assert lines[0]["policy_tokens"] < lines[0]["response_tokens"] == int(tensors["attention_mask"][0, -1024:].sum())


@pytest.mark.slow
def test_two_locus_steps_through_the_installed_command(small_data, checkpoints, tmp_path):
    # a single-turn LOCUS recipe runs EasyR1's own rollout; the console script installs the import stand-ins itself
    script = Path(sys.executable).with_name("locus-train")
    out = tmp_path / "out"
    argv = [str(script), "easyr1-step", "--config", str(LOCUS_RECIPE), "data.max_prompt_length=1024", "--cpu"]
    argv += ["--model", str(checkpoints["qwen2_5_vl"]), "--data", str(small_data), "--steps", "2", "--out", str(out)]
    env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    result = subprocess.run(argv, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "import stand-ins for vllm" in result.stdout
    rows = read_metrics(out)
    assert len(rows) == 2 and all(set(METRICS) <= set(row) for row in rows)
    assert rows[0]["tool_calls_mean"] == 0 and rows[0]["masked_tool_tokens"] == 0
    assert rows[0]["response_tokens"] <= 64 and "reward/iou" in rows[0]  # the cue-search reward's keys


@pytest.mark.slow  # 65-105 s each on 2 cores: the agent's full system prompt pads every prompt to 3,072 tokens
@pytest.mark.parametrize("stage", [1, 2])
def test_two_steps_of_the_shipped_lfpc_recipes_with_the_cpu_preset(stage, lfpc_data, checkpoints, tmp_path):
    # the recipes a cluster runs (Table 12's, the agent's own system prompt, no KL), with only the --cpu preset
    # written next to the command, through the installed console script: Stage I generates with HF, Stage II
    # replays a zooming and a wrong rollout per question so its grounding reward is exercised
    script = Path(sys.executable).with_name("locus-train")
    recipe = REPO_ROOT / f"config/lfpc_stage{stage}_qwen2_5_vl_7b.yaml"
    out = tmp_path / "out"
    rollout = "hf" if stage == 1 else f"replay:{replay_file(tmp_path / 'replay.jsonl')}"
    argv = [str(script), "easyr1-step", "--config", str(recipe), "--cpu", "--model", str(checkpoints["qwen2_5_vl"])]
    argv += ["--data", str(lfpc_data), "--steps", "2", "--rollout", rollout, "--out", str(out)]
    env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    result = subprocess.run(argv, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = read_metrics(out)
    assert len(rows) == 2 and all(set(METRICS) <= set(row) for row in rows)
    assert all("reward/rollout_turns" in row and "reward/accuracy" in row for row in rows)
    if stage == 2:
        assert all(
            row["reward/iou"] > 0 and row["reward/grounding"] > 0 and row["masked_tool_tokens"] > 0 for row in rows
        )
        assert all(row["grad_norm"] > 0 and row["max_abs_param_delta"] > 0 for row in rows)


# ----------------------------------------------------------------------------------------------------------------
# bad input
# ----------------------------------------------------------------------------------------------------------------


@pytest.fixture
def no_model_loads(monkeypatch):
    from locus_train.easyr1.step import Step

    monkeypatch.setattr(Step, "load", lambda self: pytest.fail("a model was loaded before the input was checked"))


@pytest.mark.parametrize(
    "case",
    ["stage2_without_boxes", "replay_without_a_question", "view_larger_than_original", "max_turns_0", "no_data"],
)
def test_bad_input_is_a_one_line_error_before_any_model_loads(
    case, lfpc_data, checkpoints, tmp_path, capsys, no_model_loads
):
    # each mistake names itself and its fix on one line, exit status 2, before a model (or a step) costs anything
    recipe, data, extra = RECIPES[1], lfpc_data, []
    if case == "stage2_without_boxes":
        recipe, data = RECIPES[2], write_lfpc_data(tmp_path / "boxless", boxes=False)
        expected = "has no boxes; a Stage II recipe"
    elif case == "replay_without_a_question":
        path = tmp_path / "replay.jsonl"
        path.write_text(json.dumps({"id": "q0", "turns": [RIGHT]}) + "\n")
        extra, expected = ["--rollout", f"replay:{path}"], "has no line for id 'q1'"
    elif case == "view_larger_than_original":
        data = write_lfpc_data(tmp_path / "large_view", size=(320, 240), view_size=(640, 480), boxes=False)
        expected = "the view image 640x480 is larger than its original 320x240"
    elif case == "max_turns_0":
        extra, expected = ["lfpc.max_turns=0"], "lfpc.max_turns must be a positive integer"
    else:
        data, expected = tmp_path / "empty", "train.parquet not found"
    argv = ["--config", str(recipe), *extra, "--model", str(checkpoints["qwen2_5_vl"]), "--data", str(data)]
    assert step([*argv, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and expected in err, err
    assert not (tmp_path / "out" / "metrics.jsonl").exists()
