"""Attention-in-Box: mask geometry against hand-computed grids, scores, and the eager-attention requirement."""

import json

import numpy as np
import pytest

from locus_eval.aib import aib_scores, answer_token_index, box_cell_mask
from locus_eval.cli import main

from .eval_helpers import write_val_parquet


def test_mask_matches_a_hand_computed_grid():
    # 640 x 480 stored, seen as 644 x 476 by Qwen2.5-VL (23 x 17 cells of 28 px). The box (100, 100)-(200, 150)
    # maps to x 100.6..201.3, y 99.2..148.8 seen px: columns 3..7 (84..224 px) and rows 3..5 (84..168 px).
    mask = box_cell_mask([(100.0, 100.0, 200.0, 150.0)], 640, 480, 644, 476, 28)
    assert mask.shape == (17, 23)
    expected = np.zeros((17, 23), dtype=bool)
    expected[3:6, 3:8] = True
    assert (mask == expected).all()


def test_mask_edges_touching_a_cell_do_not_count_and_boxes_unite():
    # cells of 32 px on a 128 x 64 image seen as is: (32, 0)-(64, 32) is exactly cell (0, 1), not its neighbours;
    # the second box (96.5, 40)-(128, 64) overlaps the last column of the second row only
    mask = box_cell_mask([(32.0, 0.0, 64.0, 32.0), (96.5, 40.0, 128.0, 64.0)], 128, 64, 128, 64, 32)
    assert mask.astype(int).tolist() == [[0, 1, 0, 0], [0, 0, 0, 1]]


def test_aib_scores_hand_computed():
    mask = np.array([[True, False], [False, False]])
    # layer 0 puts half of its image attention in the box cell, layer 1 all of it (raw scales differ on purpose:
    # each layer is normalized over the image before averaging)
    maps = np.array([[[1.0, 1.0], [0.0, 0.0]], [[0.2, 0.0], [0.0, 0.0]]])
    scores = aib_scores(maps, mask)
    assert scores["aib_per_layer"] == pytest.approx([0.5, 1.0])
    assert scores["mean_aib"] == pytest.approx(0.75)
    assert scores["peak_in_box"] == 1.0


class ByteTokenizer:
    """Stands in for a tokenizer whose tokens are single characters."""

    def decode(self, ids):
        return "".join(chr(i) for i in ids)


def test_answer_token_is_the_first_visible_token_after_the_tag():
    text = "<think>x</think><answer>\n[1, 2]</answer>"
    index, source = answer_token_index(ByteTokenizer(), [ord(c) for c in text])
    assert (text[index], source) == ("[", "answer_tag")
    # no answer tag (e.g. a plain benchmark answer): the first generated token
    assert answer_token_index(ByteTokenizer(), [ord(c) for c in "B"]) == (0, "first_token")
    # cut off right after the tag: nothing to attribute
    assert answer_token_index(ByteTokenizer(), [ord(c) for c in "<answer>"]) == (None, "answer_tag")


def test_aib_on_tiny_models(tmp_path, tiny_checkpoint):
    kind, model = tiny_checkpoint
    data = write_val_parquet(
        tmp_path / "val.parquet",
        [{"size": (160, 120), "box": (20, 30, 60, 70)}, {"size": (120, 160), "box": (40, 40, 100, 120)}],
    )
    out = tmp_path / "aib"
    main(["aib", "--model", str(model), "--data", str(data), "--out", str(out), "--max-new-tokens", "3"])
    rows = [json.loads(line) for line in (out / "aib.jsonl").read_text().splitlines()]
    assert len(rows) == 2
    for row in rows:
        assert len(row["aib_per_layer"]) == 2  # the tiny text decoder has two layers
        assert all(0.0 <= v <= 1.0 for v in row["aib_per_layer"]) and 0.0 <= row["mean_aib"] <= 1.0
        assert row["answer_source"] == "first_token"  # three random tokens never write <answer>
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n"] == 2 and 0.0 <= summary["peak_in_box"] <= 1.0
    with np.load(out / "maps" / "0.npz") as saved:
        # one map cell per merged token: the seen image divided by patch x merge
        factor = {"qwen2_5_vl": 28, "qwen3_vl": 32}[kind]
        assert saved["map"].shape == (saved["image"].shape[0] // factor, saved["image"].shape[1] // factor)
        assert saved["map"].sum() == pytest.approx(1.0, abs=1e-5)
    assert (out / "aib_layers.png").stat().st_size > 0 and (out / "aib_heatmaps.png").stat().st_size > 0


def test_answer_row_probe_equals_eager_output_attentions_per_layer(tiny_checkpoint):
    # The probe (SDPA forward, row from the captured post-RoPE q/k, GQA grouping, the module's scaling) must give
    # exactly what eager output_attentions gives, layer by layer: Qwen2.5-VL (mrope, q/k bias) and Qwen3-VL (q/k
    # RMSNorm, interleaved mrope, deepstack), both with 4 query heads over 2 KV heads, float32
    import torch

    from locus_eval import aib
    from locus_train.prompting import chat_prompt

    from .eval_helpers import scene

    _, model = tiny_checkpoint
    probe = aib.AttentionProbe(model, 3136, 4194304)
    prompt = chat_prompt(probe.processor, "<image>\nWhere is the red square?")
    inputs = dict(
        probe.processor(text=[prompt], images=[scene(160, 120)], add_special_tokens=False, return_tensors="pt")
    )
    probe_rows = aib.layer_rows(probe.model, inputs, "probe")
    eager_rows = aib.layer_rows(probe.model, inputs, "eager")
    assert probe_rows.shape == eager_rows.shape == (2, inputs["input_ids"].shape[1])
    for layer in range(len(probe_rows)):
        torch.testing.assert_close(probe_rows[layer], eager_rows[layer], atol=1e-5, rtol=0)
    assert probe_rows.sum(-1).tolist() == pytest.approx([1.0, 1.0], abs=1e-5)  # a softmax row per layer
    # the probe leaves the model as it found it: SDPA, and no hook left in the attention registry
    assert probe.model.get_decoder().config._attn_implementation == "sdpa"
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    assert "sdpa" not in ALL_ATTENTION_FUNCTIONS._local_mapping


def test_aib_cli_probe_and_eager_agree(tmp_path, tiny_qwen2_5_vl):
    # end to end: the default probe and the --attention eager cross-check give the same per-layer AIB
    data = write_val_parquet(tmp_path / "val.parquet", [{"size": (160, 120), "box": (20, 30, 60, 70)}])
    runs = {}
    for mode in ("probe", "eager"):
        out = tmp_path / mode
        main(["aib", "--model", str(tiny_qwen2_5_vl), "--data", str(data), "--out", str(out),
              "--max-new-tokens", "2", "--attention", mode])  # fmt: skip
        runs[mode] = json.loads((out / "aib.jsonl").read_text().splitlines()[0])
        assert json.loads((out / "summary.json").read_text())["attention"] == mode
    assert runs["probe"]["aib_per_layer"] == pytest.approx(runs["eager"]["aib_per_layer"], abs=1e-5)


def test_probe_refuses_a_model_running_eager(tmp_path, tiny_qwen2_5_vl):
    from locus_eval import aib

    data = write_val_parquet(tmp_path / "val.parquet", [{"size": (160, 120), "box": (20, 30, 60, 70)}])
    probe = aib.AttentionProbe(tiny_qwen2_5_vl, 3136, 4194304)
    # eager is not a registered kernel: nothing to hook, so the probe must say so rather than return nothing
    probe.model.set_attn_implementation("eager")
    (item,) = aib.load_items(data)
    with pytest.raises(RuntimeError, match="attn_implementation='sdpa'"):
        probe.analyse(item, None, max_new_tokens=2)
