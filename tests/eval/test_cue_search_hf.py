"""``locus-eval cue-search --backend hf`` end to end on tiny random-weight checkpoints (the path users run on CPU)."""

import json

import pytest

from locus_agent.processor import checkpoint_coord_frame
from locus_eval.cli import main
from locus_eval.predictions import read_predictions
from tests.testing_utils import require_gpu, require_vllm

from .eval_helpers import write_val_parquet


EXAMPLES = [
    {"size": (160, 120), "box": (20, 30, 60, 70), "size_bin": "tiny"},
    {"size": (120, 160), "box": (40, 40, 100, 120), "size_bin": "small"},
    {"size": (200, 100), "box": (0, 0, 64, 64), "size_bin": "small"},
]


def cue_search(model, data, out, *extra):
    # the checkpoint's own frame: another one is refused before the model loads (test_reliability covers that)
    frame = checkpoint_coord_frame(model)
    main(["cue-search", "--backend", "hf", "--model", str(model), "--data", str(data), "--out", str(out),
          "--coord-frame", frame, "--max-new-tokens", "6", "--batch-size", "2", *extra])  # fmt: skip


def test_cue_search_hf_generates_saves_and_scores(tmp_path, tiny_checkpoint):
    kind, model = tiny_checkpoint
    data = write_val_parquet(tmp_path / "val.parquet", EXAMPLES)
    out = tmp_path / "run"
    cue_search(model, data, out)
    saved = read_predictions(out / "predictions.jsonl")
    assert sorted(saved) == [0, 1, 2]
    assert [saved[i]["image_id"] for i in range(3)] == [1000, 1001, 1002]
    assert all(isinstance(r["response"], str) and 1 <= r["num_tokens"] <= 6 for r in saved.values())
    settings = json.loads((out / "generation.json").read_text())
    # the tiny processors' own limits are recorded so scoring rebuilds the frame the model saw
    assert (settings["processor_min_pixels"], settings["processor_max_pixels"]) == (
        {"qwen2_5_vl": 56 * 56, "qwen3_vl": 64 * 64}[kind],
        448 * 448,
    )
    assert settings["think_prefilled"] is False
    metrics = json.loads((out / "metrics.json").read_text())
    # six random tokens are never a box: everything is a parse failure with IoU 0, and nothing is dropped
    assert metrics["n"] == 3 and metrics["parse_fail_rate"] == 1.0 and metrics["mean_iou"] == 0.0
    assert set(metrics["by_size_bin"]) == {"tiny", "small"}


def test_cue_search_resumes_after_a_kill_and_refuses_other_settings(tmp_path, tiny_qwen2_5_vl, capsys):
    data = write_val_parquet(tmp_path / "val.parquet", EXAMPLES)
    out = tmp_path / "run"
    cue_search(tiny_qwen2_5_vl, data, out, "--limit", "2")
    first = (out / "predictions.jsonl").read_text().splitlines()
    # simulate a kill in the middle of writing record 1: the torn line must be regenerated, record 0 kept as is
    (out / "predictions.jsonl").write_text(first[0] + "\n" + first[1][: len(first[1]) // 2])
    cue_search(tiny_qwen2_5_vl, data, out)
    lines = (out / "predictions.jsonl").read_text().splitlines()
    assert lines[0] == first[0]
    assert sorted(json.loads(line)["index"] for line in lines) == [0, 1, 2]
    assert json.loads(lines[1]) == json.loads(first[1])  # greedy decoding: the regenerated record is identical
    with pytest.raises(SystemExit):
        cue_search(tiny_qwen2_5_vl, data, out, "--max-new-tokens", "9")
    assert "max_new_tokens: saved 6, now 9" in capsys.readouterr().err


def test_thinking_template_is_detected(tmp_path, tiny_qwen3_vl_thinking):
    data = write_val_parquet(tmp_path / "val.parquet", EXAMPLES[:1])
    cue_search(tiny_qwen3_vl_thinking, data, tmp_path / "run")
    # the template ends the prompt with "<think>\n", so responses start inside the think block
    assert json.loads((tmp_path / "run" / "generation.json").read_text())["think_prefilled"] is True


@require_gpu
@require_vllm
def test_cue_search_vllm_matches_hf_format(tmp_path, tiny_qwen2_5_vl):
    data = write_val_parquet(tmp_path / "val.parquet", EXAMPLES)
    main(["cue-search", "--backend", "vllm", "--model", str(tiny_qwen2_5_vl), "--data", str(data),
          "--out", str(tmp_path / "run"), "--coord-frame", "qwen2_5_vl", "--max-new-tokens", "6",
          "--max-model-len", "2048", "--gpu-memory-utilization", "0.3"])  # fmt: skip
    assert sorted(read_predictions(tmp_path / "run" / "predictions.jsonl")) == [0, 1, 2]
