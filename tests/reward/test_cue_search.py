"""The EasyR1 reward function, loaded the way EasyR1 loads it, against every rule of the reward."""

import functools
import importlib.util
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from locus_reward import frames
from locus_reward.cue_search import SCORE_KEYS, score_response
from locus_reward.ground_truth import dumps


REWARD_FILE = Path(__file__).resolve().parents[2] / "locus_reward" / "cue_search.py"
REQUIRED_KEYS = {"overall", "format", "iou", "acc50", "acc75", "gt_error", "parse_fail"}


def load_like_easyr1(**reward_function_kwargs):
    """What ``verl/workers/reward/function.py`` does with ``reward_function=<file>:compute_score``."""
    spec = importlib.util.spec_from_file_location("custom_reward_fn", REWARD_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, functools.partial(module.compute_score, **reward_function_kwargs)


def score(response: str, ground_truth: str, **kwargs) -> dict[str, float]:
    _, compute_score = load_like_easyr1(**kwargs)
    (result,) = compute_score([{"response": response, "response_length": 1, "ground_truth": ground_truth}])
    return result


def respond(box, think: str = "The cue is the sign.") -> str:
    return f"<think>{think}</think><answer>[{', '.join(str(v) for v in box)}]</answer>"


def assert_well_formed_scores(result: dict[str, float]) -> None:
    assert set(result) == set(SCORE_KEYS)
    assert all(isinstance(value, float) and math.isfinite(value) and 0.0 <= value <= 1.0 for value in result.values())
    for flag in ("format", "acc50", "acc75", "gt_error", "parse_fail"):
        assert result[flag] in (0.0, 1.0)


CUE = (600.0, 440.0, 620.0, 460.0)  # a 20 x 20 px cue near the corner of a 640 x 480 image
GT = dumps(CUE, 640, 480)


def test_loads_the_way_easyr1_does():
    # EasyR1 imports the file under its own module name and binds reward_function_kwargs with functools.partial
    module, compute_score = load_like_easyr1(format_weight=0.1, coord_frame="original")
    assert (module.REWARD_NAME, module.REWARD_TYPE) == ("locus_cue_search", "batch")
    batch = [
        {"response": respond(CUE), "response_length": 12, "ground_truth": GT},
        {"response": "no answer", "response_length": 2, "ground_truth": GT},
        {"response": respond((0, 0, 20, 20)), "response_length": 12, "ground_truth": GT},
    ]
    results = compute_score(batch)
    assert [r["overall"] for r in results] == [1.0, 0.0, 0.1]  # same order: perfect, nothing, format only
    for result in results:
        assert REQUIRED_KEYS <= result.keys()
        assert_well_formed_scores(result)


@pytest.mark.parametrize(("width", "height"), [(640, 480), (500, 375), (427, 640), (640, 360)])
def test_a_perfect_answer_in_the_wrong_frame_loses(width, height):
    # Qwen2.5-VL writes pixels of the resized image it sees; a stored-pixel answer is a frame bug, not a good box
    cue = (width - 40.0, height - 40.0, width - 20.0, height - 20.0)
    gt = dumps(cue, width, height)
    seen_frame = frames.to_model(cue, width, height, "qwen2_5_vl")
    assert score(respond(seen_frame), gt)["iou"] == pytest.approx(1.0)
    assert score(respond(cue), gt)["iou"] < 0.5


def test_wrong_frame_on_coco_640x480_caps_iou_below_half():
    # the demonstration: 640 x 480 is seen as 644 x 476, which shifts a corner cue by about 4 px
    right = score(respond(frames.to_model(CUE, 640, 480, "qwen2_5_vl")), GT)
    wrong = score(respond(CUE), GT)
    assert (right["iou"], right["acc50"], right["acc75"]) == (pytest.approx(1.0), 1.0, 1.0)
    assert wrong["iou"] < 0.5 and wrong["acc50"] == 0.0


@pytest.mark.parametrize(
    ("data_limits", "seen_size"),
    [
        ((262144, 4194304), (588, 448)),  # EasyR1's default upsamples 500 x 375 to 591 x 443 before smart_resize
        ((3136, 4194304), (504, 364)),  # a lower data.min_pixels leaves it alone: only smart_resize applies
    ],
)
def test_data_pixel_limits_decide_the_frame(data_limits, seen_size):
    # the reward must use the data config's limits, or every answer on upsampled images is in the wrong frame
    min_pixels, max_pixels = data_limits
    gt = dumps((0.0, 0.0, 250.0, 187.5), 500, 375)
    answer = respond((0, 0, seen_size[0] / 2, seen_size[1] / 2))
    assert score(answer, gt, min_pixels=min_pixels, max_pixels=max_pixels)["iou"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("coord_frame", "answer"),
    [
        ("qwen3_vl", (937.5, 916.6666666666666, 968.75, 958.3333333333334)),  # relative 0..1000
        ("original", CUE),  # stored pixels
    ],
)
def test_other_frames(coord_frame, answer):
    assert score(respond(answer), GT, coord_frame=coord_frame)["iou"] == pytest.approx(1.0)


def test_boxes_past_the_image_are_clipped():
    # negative and out-of-frame numbers are clipped to the image before scoring
    corner = dumps((600.0, 440.0, 640.0, 480.0), 640, 480)
    assert score(respond((600, 440, 900, 700)), corner, coord_frame="original")["iou"] == pytest.approx(1.0)
    assert score(respond((-50, -50, -10, -10)), corner, coord_frame="original")["iou"] == 0.0


@pytest.mark.parametrize("format_weight", [0.0, 0.1, 0.5, 1.0])
def test_overall_combines_localization_and_format(format_weight):
    # overall = (1 - w) * localization + w * format, for a partial overlap with good format
    result = score(respond((605, 440, 625, 460)), GT, coord_frame="original", format_weight=format_weight)
    assert result["overall"] == pytest.approx((1 - format_weight) * result["iou"] + format_weight * 1.0)


@pytest.mark.parametrize(
    ("response", "think_prefilled", "format_score"),
    [
        (respond(CUE), False, 1.0),  # the full contract
        ("The sign.</think><answer>[600, 440, 620, 460]</answer>", True, 1.0),  # template opened the block
        ("The sign.</think><answer>[600, 440, 620, 460]</answer>", False, 0.0),  # same text, flag not set
        (respond(CUE), True, 0.0),  # a second <think> under a prefilled template
        ("<think>\n</think>\n<answer>[600, 440, 620, 460]</answer>", False, 1.0),  # MiMo-VL's empty think block
        ("<answer>[600, 440, 620, 460]</answer>", False, 0.0),  # answer without reasoning
    ],
)
def test_format_term(response, think_prefilled, format_score):
    result = score(response, GT, coord_frame="original", think_prefilled=think_prefilled)
    assert (result["format"], result["iou"]) == (format_score, 1.0)  # localization is never gated on format


@pytest.mark.parametrize(
    "response",
    [
        "<think>It is at [600, 440, 620, 460].</think>",  # box only in the think text
        "[600, 440, 620, 460]",  # no answer block
        "<think>a</think><answer>[620, 440, 600, 460]</answer>",  # inverted box
        "<think>a</think><answer>[600, 440, 620, nan]</answer>",  # NaN
        "<think>a</think><answer>[1, 2, 3, 4] [600, 440, 620, 460]</answer>",  # two boxes
    ],
)
def test_no_usable_box_scores_zero_and_is_counted(response):
    result = score(response, GT, coord_frame="original")
    assert (result["overall"], result["iou"], result["parse_fail"], result["gt_error"]) == (0.0, 0.0, 1.0, 0.0)


@pytest.mark.parametrize(
    "ground_truth",
    [
        None,  # missing
        "",  # empty
        "[600, 440, 620, 460]",  # a bare box: no image size
        '{"box": [600, 440, 620], "width": 640, "height": 480}',  # three numbers
        '{"box": [620, 440, 600, 460], "width": 640, "height": 480}',  # inverted
        '{"box": [600, 440, 620, 460], "width": 0, "height": 480}',  # empty image
        '{"box": [600, 440, 620, 460], "width": "640", "height": 480}',  # size as a string
        '{"box": [1e999, 440, 620, 460], "width": 640, "height": 480}',  # overflow
        '{"box": [NaN, 440, 620, 460], "width": 640, "height": 480}',  # NaN
        '{"box": [1' + "0" * 400 + ', 440, 620, 460], "width": 640, "height": 480}',  # integer beyond float
        "[" * 100_000,  # nesting deep enough to exhaust the JSON parser's recursion
        '{"box": [0, 0, 10, 1], "width": 1000, "height": 5}',  # aspect 201 after EasyR1 upsamples: no frame
        {"box": [600, 440, 620, 460], "width": 640, "height": 480},  # a dict, not the JSON string contract
    ],
)
def test_malformed_ground_truth_scores_zero_and_is_counted(ground_truth):
    result = score(respond(CUE), ground_truth)
    assert (result["overall"], result["format"], result["gt_error"], result["parse_fail"]) == (0.0, 0.0, 1.0, 0.0)
    assert_well_formed_scores(result)


@pytest.mark.parametrize(
    "item",
    [
        {},  # no keys at all
        {"response": None, "ground_truth": GT},  # response missing
        "not a dict",  # not even a mapping
    ],
)
def test_malformed_batch_items_never_raise(item):
    _, compute_score = load_like_easyr1()
    (result,) = compute_score([item])
    assert result["overall"] == 0.0
    assert_well_formed_scores(result)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"coord_frame": "qwen2.5"}, "unknown coord_frame"),  # typo
        ({"variant": "ciou"}, "unknown variant"),  # not implemented
        ({"format_weight": 1.5}, "format_weight"),  # above 1
        ({"format_weight": -0.1}, "format_weight"),  # below 0
        ({"format_weight": "0.1"}, "format_weight"),  # a string from a badly quoted YAML value
        ({"coverage_tau": 2}, "coverage_tau"),  # above 1
        ({"l1_weight": math.nan}, "l1_weight"),  # NaN
        ({"min_pixels": 0}, "min_pixels"),  # not positive
        ({"max_pixels": 4194304.0}, "max_pixels"),  # a float pixel count
        ({"think_prefilled": "yes"}, "think_prefilled"),  # not a boolean
    ],
)
def test_bad_options_raise_before_scoring(kwargs, message):
    # a configuration error must stop the run on the first batch, even an empty one
    _, compute_score = load_like_easyr1(**kwargs)
    with pytest.raises(ValueError, match=message):
        compute_score([])


def test_unknown_keyword_is_a_type_error():
    # a misspelt option name fails at call time, as any Python function would
    _, compute_score = load_like_easyr1(format_wieght=0.1)
    with pytest.raises(TypeError):
        compute_score([])


NEAR = (590.0, 430.0, 610.0, 450.0)  # overlaps the cue by a quarter
FAR = (10.0, 10.0, 30.0, 30.0)  # the opposite corner


def test_giou_ranks_misses_by_distance():
    # with plain IoU both misses score 0; GIoU still prefers the closer one
    near_miss = score(respond((560, 440, 580, 460)), GT, coord_frame="original", variant="giou")
    far_miss = score(respond(FAR), GT, coord_frame="original", variant="giou")
    assert near_miss["iou"] == far_miss["iou"] == 0.0
    assert near_miss["accuracy"] > far_miss["accuracy"] > 0.0
    exact = score(respond(CUE), GT, coord_frame="original", variant="giou")
    assert exact["accuracy"] == 1.0


def test_lfpc_formula():
    # (1 - l1_weight) * IoU * [coverage >= tau] + l1_weight * (1 - L1), L1 over corners normalized by W and H
    covering = (598.0, 438.0, 621.0, 461.0)  # covers the whole cue, IoU 400 / 529
    result = score(respond(covering), GT, coord_frame="original", variant="lfpc", l1_weight=0.4)
    l1 = (2 / 640 + 2 / 480 + 1 / 640 + 1 / 480) / 4
    assert result["accuracy"] == pytest.approx(0.6 * 400 / 529 + 0.4 * (1 - l1))
    assert result["iou"] == pytest.approx(400 / 529)  # the iou key stays plain IoU


def test_lfpc_grants_iou_only_above_the_coverage_threshold():
    # NEAR covers 25% of the cue: below tau=0.9 its IoU is withheld, above tau=0.2 it is granted
    strict = score(respond(NEAR), GT, coord_frame="original", variant="lfpc")
    lenient = score(respond(NEAR), GT, coord_frame="original", variant="lfpc", coverage_tau=0.2)
    assert strict["iou"] == lenient["iou"] > 0.0
    assert lenient["accuracy"] - strict["accuracy"] == pytest.approx(0.5 * strict["iou"])


def test_lfpc_gives_tiny_cues_a_graded_signal_and_rejects_huge_boxes():
    # every miss has IoU 0, yet a closer miss scores higher; a whole-image box covers the cue but scores low
    results = [score(respond(box), GT, coord_frame="original", variant="lfpc") for box in [(560, 440, 580, 460), FAR]]
    assert results[0]["iou"] == results[1]["iou"] == 0.0
    assert results[0]["accuracy"] > results[1]["accuracy"]
    whole = score(respond((0, 0, 640, 480)), GT, coord_frame="original", variant="lfpc")
    assert whole["accuracy"] < score(respond(NEAR), GT, coord_frame="original", variant="lfpc")["accuracy"]


@pytest.mark.parametrize("variant", ["iou", "giou", "lfpc"])
def test_iou_keys_report_plain_iou_whatever_the_variant(variant):
    # runs with different variants stay comparable on iou / acc50 / acc75
    result = score(respond(NEAR), GT, coord_frame="original", variant=variant)
    assert (result["iou"], result["acc50"], result["acc75"]) == (pytest.approx(100 / 700), 0.0, 0.0)


def test_score_response_is_what_compute_score_maps():
    # the evaluator calls score_response directly and must get the same numbers as training
    kwargs = {"coord_frame": "qwen2_5_vl", "variant": "lfpc", "format_weight": 0.2}
    for response in [respond(NEAR), respond(CUE), "junk"]:
        assert score_response(response, GT, **kwargs) == score(response, GT, **kwargs)


def test_a_megabyte_response_is_scored():
    # a runaway generation must be scored (0 here: the answer sits past the cap), not raise or hang
    response = "<think>" + "very long " * 100_000 + "</think><answer>" + "[1, 2, " * 100_000 + "</answer>"
    result = score(response, GT)
    assert (result["overall"], result["parse_fail"]) == (0.0, 1.0)


numbers = st.one_of(
    st.integers(-5000, 5000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["nan", "inf", "-0", "1e999", ".5", "7."]),
)
notations = st.sampled_from(
    [
        "[{}, {}, {}, {}]",
        '{{"bbox_2d": [{}, {}, {}, {}]}}',
        "({}, {}), ({}, {})",
        '```json\n[{{"bbox_2d": [{}, {}, {}, {}]}}]\n```',
    ]
)
options = st.fixed_dictionaries(
    {
        "coord_frame": st.sampled_from(frames.COORD_FRAMES),
        "variant": st.sampled_from(["iou", "giou", "lfpc"]),
        "think_prefilled": st.booleans(),
        "format_weight": st.floats(0, 1),
        "min_pixels": st.sampled_from([3136, 262144, None]),
    }
)


@settings(max_examples=150, deadline=None)
@given(
    notation=notations,
    box=st.tuples(numbers, numbers, numbers, numbers),
    size=st.tuples(st.integers(1, 5000), st.integers(1, 5000)),
    kwargs=options,
)
def test_random_boxes_always_score_in_range(notation, box, size, kwargs):
    # any numbers in any notation, against any image size, under any options: finite scores in [0, 1]
    width, height = size
    gt = dumps((0.0, 0.0, width / 2, height / 2), width, height)
    result = score_response(f"<think>x</think><answer>{notation.format(*box)}</answer>", gt, **kwargs)
    assert_well_formed_scores(result)
    assert result["overall"] == pytest.approx(
        (1 - kwargs["format_weight"]) * result["accuracy"] + kwargs["format_weight"] * result["format"]
    )


@settings(max_examples=150, deadline=None)
@given(response=st.text(max_size=400), ground_truth=st.one_of(st.text(max_size=100), st.just(GT)), kwargs=options)
def test_random_strings_never_raise(response, ground_truth, kwargs):
    # arbitrary unicode (control characters included) as response and as ground truth
    assert_well_formed_scores(score_response(response, ground_truth, **kwargs))


def test_compute_score_and_score_response_share_their_defaults():
    # score_response (used by locus-eval) builds its options from the dataclass defaults, compute_score (used by
    # EasyR1) from its signature: they must not drift apart, or evaluation would score in another frame
    import dataclasses
    import inspect

    from locus_reward.cue_search import compute_score
    from locus_reward.options import CueSearchOptions as _Options

    signature = inspect.signature(compute_score).parameters
    for field in dataclasses.fields(_Options):
        assert signature[field.name].default == field.default, field.name
    assert set(signature) - {"reward_inputs"} == {field.name for field in dataclasses.fields(_Options)}
