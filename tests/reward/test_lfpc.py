"""The LFPC Stage I / II rewards, loaded the way EasyR1 loads them, against hand-computed cases.

The scene of most cases: a 2520 x 1680 original shown as a 1260 x 840 view. Qwen2.5-VL sees that view as is (both
sides are multiples of 28 and within every pixel limit), so a box the model writes maps to the original by x2.
Nested GT boxes: B1 = [1000, 600, 1040, 640] (40 x 40 = 1,600 px), B2 = [960, 560, 1160, 720] (200 x 160 = 32,000),
B3 = [800, 400, 1400, 900] (600 x 500 = 300,000).
"""

import functools
import importlib.util
import inspect
import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from locus_reward import frames
from locus_reward.lfpc import SCORE_KEYS, score_response
from locus_reward.lfpc_ground_truth import dumps, loads
from locus_reward.options import LfpcOptions
from locus_reward.tool_calls import TOOL_NAME
from tests.testing_utils import require_easyr1


REWARD_FILE = Path(__file__).resolve().parents[2] / "locus_reward" / "lfpc.py"
CHOICES = ["stripes", "dots", "checkerboard", "plain"]
B1, B2, B3 = (1000, 600, 1040, 640), (960, 560, 1160, 720), (800, 400, 1400, 900)
GT = dumps("C", 2520, 1680, view_width=1260, view_height=840, choices=CHOICES, boxes=[B1, B2, B3])
WIDE = (490, 290, 540, 330)  # view frame; original [980, 580, 1080, 660]: holds B1, inside B2
TIGHT = (500, 300, 515, 320)  # original [1000, 600, 1030, 640]: 30 x 40 of B1, coverage 0.75 < 0.9
FAR = (0, 0, 100, 100)  # original [0, 0, 200, 200]: far from every box


def load_like_easyr1(name: str, **reward_function_kwargs):
    """What ``verl/workers/reward/function.py`` does with ``reward_function=<file>:<name>``."""
    spec = importlib.util.spec_from_file_location("custom_reward_fn", REWARD_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, functools.partial(getattr(module, name), **reward_function_kwargs)


def score(response: str, ground_truth=GT, stage: int = 2, **kwargs) -> dict[str, float]:
    _, compute = load_like_easyr1(f"compute_score_stage{stage}", **kwargs)
    (result,) = compute([{"response": response, "response_length": 1, "ground_truth": ground_truth}])
    assert set(result) == set(SCORE_KEYS)
    assert all(isinstance(value, float) and math.isfinite(value) for value in result.values())
    return result


def call(box, label: str = "glyph") -> str:
    arguments = {"bbox_2d": list(box), "label": label}
    return "<tool_call>" + json.dumps({"name": TOOL_NAME, "arguments": arguments}) + "</tool_call>"


def tool_turn(boxes, prefix: str = "") -> str:
    """A tool turn as EasyR1 decodes it: special tokens (im_start/im_end, the image placeholders) dropped."""
    lines = "".join(f"Zoomed in on the image to the region {list(box)} with label glyph.\n" for box in boxes)
    return f"\nuser\n<tool_response>\n{lines}</tool_response>\nassistant\n{prefix}"


def trajectory(*crops, answer: str = "C", prefix: str = "", opening: str = "<think>") -> str:
    """One turn per crop (each a think block and one call), then the answer turn."""
    text = ""
    for box in crops:
        text += f"{opening}Look closer.</think>{call(box)}" + tool_turn([box], prefix)
    return text + f"{opening}Checkered.</think><answer>{answer}</answer>"


def test_loads_the_way_easyr1_does_and_lists_its_options():
    # EasyR1 imports the file under its own name and binds reward_function_kwargs with functools.partial
    module, compute = load_like_easyr1("compute_score_stage1", tool_weight=1.0)
    assert (module.REWARD_NAME, module.REWARD_TYPE) == ("locus_lfpc", "batch")
    results = compute([{"response": trajectory(WIDE), "response_length": 50, "ground_truth": GT}] * 2)
    assert [r["overall"] for r in results] == pytest.approx([2.0, 2.0])  # 0.8 + 0.2 + 1.0 * 1
    # help() shows every option with its default (the signature is derived from LfpcOptions)
    parameters = inspect.signature(module.compute_score_stage2).parameters
    assert parameters["coverage_tau"].default == 0.9 and parameters["crop_select"].default == "best"
    assert list(parameters)[1:] == list(LfpcOptions.__dataclass_fields__)


@pytest.mark.parametrize(
    ("response", "kwargs", "expected"),
    [
        (trajectory(WIDE), {}, 2.2),  # right, well formed, a valid call: 0.8 * 1 + 0.2 * 1 + 1.2 * 1
        (trajectory(), {}, 1.0),  # right without zooming: 0.8 + 0.2, no tool bonus
        (trajectory(WIDE, answer="B"), {}, 0.2),  # wrong answer: the tool bonus needs a right one; 0.2 * 1
        (trajectory(WIDE, answer="checkerboard"), {}, 2.2),  # the option's own text names C
        ("Checkered." + call(WIDE) + tool_turn([WIDE]) + "<answer>C</answer>", {}, 2.0),  # no think: 0.8 + 0 + 1.2
        (trajectory(WIDE), {"format_penalty": "deepeyes"}, 2.0),  # DeepEyes: well formed is 0; 0.8 + 0 + 1.2
        ("Checkered.<answer>C</answer>", {"format_penalty": "deepeyes"}, 0.6),  # malformed is -1: 0.8 - 0.2
        (trajectory(WIDE), {"acc_weight": 1.0, "format_weight": 0.0, "tool_weight": 0.0}, 1.0),  # weights apply
        ("<think>Let me zoom.</think>" + call(WIDE) + tool_turn([WIDE]) + "<think>Hmm", {}, 0.0),  # truncated
    ],
)
def test_stage1(response, kwargs, expected):
    result = score(response, stage=1, **kwargs)
    assert result["overall"] == pytest.approx(expected)
    assert result["grounding"] > 0 or result["tool_calls"] == 0  # reported for the logs, never added in Stage I


def test_stage1_counts_what_the_trajectory_did():
    # a rejected call (wrong tool name) is no tool use and malformed: 0.8 * 1 + 0.2 * 0 + 1.2 * 0
    bad = '<think>Zoom.</think><tool_call>{"name": "zoom", "arguments": {"bbox_2d": [1, 2, 3, 4]}}</tool_call>'
    result = score(bad + tool_turn([]) + "<think>C.</think><answer>C</answer>", stage=1)
    assert (result["overall"], result["tool_calls"], result["invalid_calls"], result["turns"]) == (0.8, 0, 1, 2)
    # no answer at all: nothing but the counts; the tool call still happened
    result = score("<think>Zoom.</think>" + call(WIDE) + tool_turn([WIDE]), stage=1)
    assert (result["overall"], result["no_answer"], result["tool_calls"], result["format"]) == (0.0, 1.0, 1.0, 0.0)


# WIDE in the original is [980, 580, 1080, 660] (100 x 80 = 8,000 px), and covers B1 (coverage 1 >= 0.9):
#   IoU with B1 = 1600 / 8000 = 0.2; with B2 = 8000 / 32000 = 0.25 (inside it); with B3 = 8000 / 300000 -> max 0.25
#   corner distance to B1 = ((20 + 40) / 2520 + (20 + 20) / 1680) / 4 = 0.0119048 (B2: 0.0218254) -> R_dist 0.9880952
WIDE_GROUNDING = 0.25 + (1 - (60 / 2520 + 40 / 1680) / 4)
# TIGHT in the original is [1000, 600, 1030, 640]: inside B1, 1200 / 1600 = 0.75 of it (below tau 0.9):
#   gated R_IoU = 0 (its IoU, 1200 / 1600 = 0.75 with B1, is paid only without the gate)
#   corner distance to B1 = (10 / 2520) / 4 = 0.000992 -> R_dist 0.9990079
TIGHT_DIST = 1 - (10 / 2520) / 4
# FAR in the original is [0, 0, 200, 200]: IoU 0; closest corners B1: ((1000 + 840) / 2520 + (600 + 440) / 1680) / 4
FAR_DIST = 1 - ((1000 + 840) / 2520 + (600 + 440) / 1680) / 4


@pytest.mark.parametrize(
    ("crops", "kwargs", "grounding", "iou"),
    [
        ([WIDE], {}, WIDE_GROUNDING, 0.25),
        ([TIGHT], {}, TIGHT_DIST, 0.75),  # gated: only the distance term pays
        ([TIGHT], {"iou_gate": False}, 0.75 + TIGHT_DIST, 0.75),  # Table 10 "- IoU Thresh": IoU paid anyway
        ([WIDE], {"iou_weight": 0.0}, WIDE_GROUNDING - 0.25, 0.25),  # Table 10 "- IoU Reward"
        ([WIDE], {"distance_weight": 0.5}, 0.25 + 0.5 * (WIDE_GROUNDING - 0.25), 0.25),
        ([WIDE], {"coverage_tau": 1.0}, WIDE_GROUNDING, 0.25),  # full coverage passes tau = 1
        ([FAR], {}, FAR_DIST, 0.0),  # a far crop still gets the dense distance term
        # centres: WIDE (1030, 620), B1 (1020, 620) -> (10 / 2520) / 2; B2 (1060, 640) is farther
        ([WIDE], {"distance": "center"}, 0.25 + 1 - (10 / 2520) / 2, 0.25),
        # several crops: best = the highest grounding (WIDE 1.238 > TIGHT 0.999), last, or the mean of both
        ([WIDE, TIGHT], {}, WIDE_GROUNDING, 0.25),
        ([TIGHT, WIDE], {"crop_select": "best"}, WIDE_GROUNDING, 0.25),
        ([WIDE, TIGHT], {"crop_select": "last"}, TIGHT_DIST, 0.75),
        ([WIDE, TIGHT], {"crop_select": "mean"}, (WIDE_GROUNDING + TIGHT_DIST) / 2, (0.25 + 0.75) / 2),
        ([], {}, 0.0, 0.0),  # no valid crop: no grounding
    ],
)
def test_stage2_grounding(crops, kwargs, grounding, iou):
    result = score(trajectory(*crops), **kwargs)
    assert result["grounding"] == pytest.approx(grounding)
    assert result["iou"] == pytest.approx(iou)
    stage1 = 0.8 + 0.2 + (1.2 if crops else 0.0)  # right answer, well formed
    assert result["overall"] == pytest.approx(stage1 + grounding)
    assert score(trajectory(*crops), stage=1, **kwargs)["overall"] == pytest.approx(stage1)


def test_stage2_logs_overlap_and_bbox_ratio_of_the_selected_crop():
    # WIDE covers all of B1; its area is 8,000 of 2520 * 1680 px. TIGHT covers 0.75 of B1
    result = score(trajectory(WIDE))
    assert (result["overlap"], result["bbox_ratio"]) == (1.0, pytest.approx(8000 / (2520 * 1680)))
    assert score(trajectory(WIDE, TIGHT), crop_select="last")["overlap"] == pytest.approx(0.75)


def test_questions_without_boxes_get_no_grounding():
    # Stage I data has no boxes: the grounding keys are 0 (bbox_ratio still describes the crop)
    gt = dumps("C", 2520, 1680, view_width=1260, view_height=840, choices=CHOICES)
    result = score(trajectory(WIDE), gt)
    assert (result["overall"], result["grounding"], result["iou"], result["overlap"]) == (pytest.approx(2.2), 0, 0, 0)
    assert result["bbox_ratio"] == pytest.approx(8000 / (2520 * 1680))


def test_crops_past_the_image_are_clipped():
    # a box reaching past the view's corner is clipped to the original; one wholly outside it is empty (no IoU)
    corner = dumps(
        "C", 2520, 1680, view_width=1260, view_height=840, choices=CHOICES, boxes=[(2420, 1580, 2520, 1680)]
    )
    assert score(trajectory((1210, 790, 1400, 900)), corner)["iou"] == pytest.approx(1.0)
    outside = score(trajectory((1300, 900, 1400, 1000)), corner)
    assert (outside["iou"], outside["bbox_ratio"], outside["grounding"]) == (0.0, 0.0, 0.0)


# The frame: the stored view is 1500 x 1000 of a 3000 x 2000 original. Under EasyR1's default pixel limits the
# processor's smart_resize sees it as 1512 x 1008 (multiples of 28), so Qwen2.5-VL writes pixels of 1512 x 1008.
ORIGINAL_GT = dumps(
    "A", 3000, 2000, view_width=1500, view_height=1000, choices=["x", "y"], boxes=[(2000, 500, 2300, 800)]
)


@pytest.mark.parametrize(
    ("coord_frame", "written", "iou"),
    [
        ("qwen2_5_vl", (1008.0, 252.0, 1159.2, 403.2), 1.0),  # the box in the seen 1512 x 1008 frame
        ("qwen2_5_vl", (2000, 500, 2300, 800), 0.0),  # the same box in original pixels: the wrong frame
        # in the stored view's pixels: read as 1512 x 1008 pixels it lands at [1984.1, 496.0, 2281.7, 793.7];
        # 281.7 x 293.7 = 82,735 shared over 90,000 + 297.6^2 - 82,735 -> IoU 0.863 (the 28-px rounding)
        ("qwen2_5_vl", (1000, 250, 1150, 400), 0.863),
        ("qwen3_vl", (666.6667, 250, 766.6667, 400), 1.0),  # 0..1000 of the image
        ("original", (1000, 250, 1150, 400), 1.0),  # pixels of the stored view, no resize
    ],
)
def test_boxes_are_read_in_the_backbones_frame(coord_frame, written, iou):
    assert frames.to_model((1000, 250, 1150, 400), 1500, 1000, "qwen2_5_vl") == pytest.approx(
        (1008, 252, 1159.2, 403.2)
    )
    result = score(trajectory(written, answer="A"), ORIGINAL_GT, coord_frame=coord_frame)
    assert result["iou"] == pytest.approx(iou, abs=0.01)


def test_the_views_pixel_limits_decide_the_frame():
    # a 3000 x 2000 view (no resolution selection) is pre-resized by EasyR1 to fit max_pixels 4194304: 2508 x 1672,
    # then seen as 2520 x 1680; without the EasyR1 cap (max_pixels null) it is seen as 2996 x 1988
    gt = dumps("A", 3000, 2000, choices=["x", "y"], boxes=[(0, 0, 1500, 1000)])
    assert frames.seen_size(3000, 2000, "qwen2_5_vl") == (2520, 1680)
    assert score(trajectory((0, 0, 1260, 840), answer="A"), gt)["iou"] == pytest.approx(1.0)
    result = score(trajectory((0, 0, 1498, 994), answer="A"), gt, max_pixels=None)
    assert result["iou"] == pytest.approx(1.0)


def test_thinking_templates_prefill_the_think_block_of_every_turn():
    # Qwen3-VL-Thinking: the template writes "<think>\n" after "assistant\n" for each turn; the model's text starts
    # inside the block, and the decoded tool turn ends with that prefix
    response = trajectory(WIDE, prefix="<think>\n", opening="")
    result = score(response, coord_frame="original", think_prefilled=True)
    assert (result["format"], result["accuracy"], result["tool_calls"]) == (1.0, 1.0, 1.0)
    # without the flag the same text is malformed (no opening tag)
    assert score(response, coord_frame="original")["format"] == 0.0


@pytest.mark.parametrize(
    "ground_truth",
    [
        None,
        "",
        "{not json",
        '{"answer": "C", "width": 2520, "height": 1680}',  # no view size
        GT.replace('"C"', '"E"'),  # a letter outside the four choices
        GT.replace('"C"', '""'),  # empty answer
        GT.replace("1040.0, 640.0", "1040.0, 6400.0"),  # a box outside the image
        GT.replace("[960.0, 560.0, 1160.0, 720.0]", "[1010, 610, 1030, 630]"),  # boxes not nested (B2 inside B1)
        GT.replace('"view_width": 1260', '"view_width": 0'),
        GT.replace('"width": 2520', '"width": 2520.0'),
        dumps("A", 1000, 4, view_width=1000, view_height=4),  # a view the processor refuses: aspect 250 > 200
        "[" * 100_000,
        {"answer": "C"},  # a dict, not the JSON string contract
    ],
)
def test_malformed_ground_truth_scores_zero_and_is_counted(ground_truth):
    result = score(trajectory(WIDE), ground_truth)
    assert result == dict.fromkeys(SCORE_KEYS, 0.0) | {"gt_error": 1.0}


@pytest.mark.parametrize("item", [{}, {"response": None, "ground_truth": GT}, "not a dict", {"response": 3}])
def test_malformed_batch_items_never_raise(item):
    # EasyR1 always sends dicts of strings; anything else is scored, not raised
    _, compute = load_like_easyr1("compute_score_stage2")
    (result,) = compute([item])
    assert result["overall"] == 0.0 and set(result) == set(SCORE_KEYS)


def test_ground_truth_round_trips_and_refuses_bad_rows():
    gt = loads(GT)
    assert (gt.answer, gt.choices, gt.boxes, gt.width, gt.view_height) == (
        "C",
        tuple(CHOICES),
        (tuple(map(float, B1)), tuple(map(float, B2)), tuple(map(float, B3))),
        2520,
        840,
    )
    assert (
        loads(dumps(gt.answer, 2520, 1680, view_width=1260, view_height=840, choices=gt.choices, boxes=gt.boxes)) == gt
    )
    short = loads(dumps("a red car", 640, 480))  # short answer, no boxes, the original is the view
    assert (short.choices, short.boxes, short.view_width) == (None, (), 640)
    with pytest.raises(ValueError, match="not nested"):
        dumps("C", 2520, 1680, choices=CHOICES, boxes=[B2, B1])  # largest first
    with pytest.raises(ValueError, match="inside the 2520x1680 image"):
        dumps("C", 2520, 1680, choices=CHOICES, boxes=[(2500, 0, 2600, 10)])


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"crop_select": "first"}, ValueError, "unknown crop_select"),
        ({"distance": "l2"}, ValueError, "unknown distance"),
        ({"format_penalty": "minus_one"}, ValueError, "unknown format_penalty"),
        ({"iou_gate": "false"}, ValueError, "iou_gate must be true or false"),  # a string from a YAML typo
        ({"coverage_tau": 1.5}, ValueError, "coverage_tau"),
        ({"tool_weight": -1}, ValueError, "tool_weight must be a number >= 0"),
        ({"acc_weight": float("inf")}, ValueError, "acc_weight"),
        ({"iou_wieght": 0.0}, TypeError, "did you mean 'iou_weight'"),
    ],
)
def test_bad_options_fail_before_scoring(kwargs, error, message):
    # a typo in a recipe must stop the first batch, not train on silent zeros
    _, compute = load_like_easyr1("compute_score_stage2", **kwargs)
    with pytest.raises(error, match=message):
        compute([])


def test_score_response_scores_one_trajectory():
    assert score_response(trajectory(WIDE), GT, stage=1)["overall"] == pytest.approx(2.2)
    with pytest.raises(ValueError, match="stage"):
        score_response(trajectory(WIDE), GT, stage=3)


_TAGS = st.sampled_from(
    ["<think>", "</think>", "<answer>", "</answer>", "<tool_call>", "</tool_call>", "<tool_response>",
     "</tool_response>", "\nuser\n", "\nassistant\n", call(WIDE), call((1, 2, 3)), '{"name": "image_zoom_in_tool"',
     '"bbox_2d": [1e999, 0, 1, 1]', "C", "checkerboard", "(B)", " "]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.one_of(_TAGS, st.text(max_size=20)), max_size=40).map("".join),
    st.sampled_from([GT, ORIGINAL_GT, "{}", "", GT[:40]]),
    st.sampled_from([{}, {"crop_select": "mean", "distance": "center"}, {"coord_frame": "qwen3_vl"}]),
)
def test_fuzz_never_raises(response, ground_truth, kwargs):
    # anything a policy writes scores finite floats in range; no response can beat a perfect one
    for stage in (1, 2):
        result = score(response, ground_truth, stage=stage, **kwargs)
        assert -0.2 <= result["overall"] <= 2.2 + (2.0 if stage == 2 else 0.0)
        assert all(result[key] in (0.0, 1.0) for key in ("accuracy", "format", "tool", "no_answer", "gt_error"))
        assert 0.0 <= result["iou"] <= 1.0 and 0.0 <= result["overlap"] <= 1.0 and 0.0 <= result["bbox_ratio"] <= 1.0


# ---- through EasyR1's own reward manager, with a real tokenizer's special tokens -------------------------------

RESPONSE_LENGTH = 512  # the tiny tokenizers spell most text byte by byte


def chat_tokens(tokenizer, text: str) -> list[int]:
    return tokenizer.encode(text, add_special_tokens=False)


def easyr1_batch(tokenizer, responses: list[str], ground_truths: list[str]):
    """What the reward manager reads of a rollout batch: responses (right-padded), response_mask, ground_truth."""
    import numpy as np
    import torch
    from verl.protocol import DataProto

    ids = torch.full((len(responses), RESPONSE_LENGTH), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, text in enumerate(responses):
        tokens = chat_tokens(tokenizer, text)
        assert len(tokens) <= RESPONSE_LENGTH
        ids[i, : len(tokens)], mask[i, : len(tokens)] = torch.tensor(tokens), 1
    return DataProto.from_dict(
        tensors={"responses": ids, "response_mask": mask},
        non_tensors={"ground_truth": np.array(ground_truths, dtype=object)},
    )


def chat_trajectory(box, prefix: str = "", opening: str = "<think>") -> str:
    """The response tokens' text as the agent loop appends it, special tokens included (design: the tool turn)."""
    tool = (
        "<|im_end|>\n<|im_start|>user\n<tool_response>\n<|vision_start|><|image_pad|><|vision_end|>"
        f"Zoomed in on the image to the region {list(box)} with label glyph.\n</tool_response><|im_end|>\n"
        f"<|im_start|>assistant\n{prefix}"
    )
    return f"{opening}Look closer.</think>{call(box)}{tool}{opening}Checkered.</think><answer>C</answer><|im_end|>"


@require_easyr1
@pytest.mark.parametrize(
    ("checkpoint", "kwargs", "prefix", "opening"),
    [
        ("tiny_qwen2_5_vl", {}, "", "<think>"),
        ("tiny_qwen3_vl_thinking", {"coord_frame": "qwen3_vl", "think_prefilled": True}, "<think>\n", ""),
    ],
)
def test_easyr1_reward_manager_scores_decoded_trajectories(checkpoint, kwargs, prefix, opening, request):
    # EasyR1 decodes the response ids without special tokens and calls the reward with reward_function_kwargs
    from transformers import AutoTokenizer
    from verl.workers.reward import AutoRewardManager
    from verl.workers.reward.config import RewardConfig

    tokenizer = AutoTokenizer.from_pretrained(request.getfixturevalue(checkpoint))
    config = RewardConfig(reward_function=f"{REWARD_FILE}:compute_score_stage2", reward_function_kwargs=kwargs)
    config.post_init()
    manager = AutoRewardManager(config, tokenizer)
    assert manager.reward_type == "batch"

    # the same crop in each backbone's frame: Qwen2.5-VL pixels of the 1260 x 840 view, Qwen3-VL 0..1000
    box = WIDE if "coord_frame" not in kwargs else (389, 345, 429, 393)  # 1000 * [490, 290, 540, 330] / [1260, 840]
    right = chat_trajectory(box, prefix, opening)
    # what the reward reads: the chat text with the role tokens and image placeholders gone
    decoded = tokenizer.decode(chat_tokens(tokenizer, right), skip_special_tokens=True)
    assert decoded == trajectory(box, prefix=prefix, opening=opening)
    responses = [right, right.replace("<answer>C", "<answer>B"), right]
    batch = easyr1_batch(tokenizer, responses, [GT, GT, "{not json"])
    rewards, metrics = manager.compute_reward(batch)

    overall = metrics["overall"]
    expected = score_response(trajectory(box, prefix=prefix, opening=opening), GT, **kwargs)["overall"]
    assert overall[0] == pytest.approx(expected)
    assert overall[0] == pytest.approx(2.2 + WIDE_GROUNDING, abs=0.01)  # the hand-computed case, decoded by EasyR1
    assert overall[1] == pytest.approx(overall[0] - 0.8 - 1.2)  # wrong answer: no accuracy, no tool bonus
    assert overall[2] == 0.0 and metrics["gt_error"][2] == 1.0
    assert metrics["tool_calls"] == [1.0, 1.0, 0.0] and metrics["turns"][:2] == [2.0, 2.0]
    lengths = batch.batch["response_mask"].sum(-1)
    for i, length in enumerate(lengths.tolist()):  # one scalar per response, on its last valid token
        assert rewards[i, length - 1].item() == pytest.approx(overall[i])
    assert set(metrics) == set(SCORE_KEYS)
