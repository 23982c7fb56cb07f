"""LFPC rewards for EasyR1: Stage I (learn to focus) and Stage II (learn to crop precisely), for crop-tool agents.

Load one as ``worker.reward.reward_function=<repo>/locus_reward/lfpc.py:compute_score_stage1`` (or
``:compute_score_stage2``) with the options of :class:`locus_reward.options.LfpcOptions` as
``worker.reward.reward_function_kwargs``. Both are EasyR1 batch rewards: a list of ``{"response",
"response_length", "ground_truth"}`` dicts in, one dict of floats per response out. ``ground_truth`` is the JSON of
:mod:`locus_reward.lfpc_ground_truth`; ``response`` is the whole decoded trajectory -- model turns and tool turns,
special tokens dropped -- read with :func:`locus_reward.tool_calls.parse_trajectory` (the one protocol parser).

Per response, with the defaults (acc_weight 0.8, format_weight 0.2, tool_weight 1.2; the paper's Table 12)::

    stage1 = acc_weight * accuracy + format_weight * format + tool_weight * tool
    stage2 = stage1 + grounding
    grounding = iou_weight * R_IoU + distance_weight * R_dist        (of the selected crop; 0 without a valid crop)
    R_IoU  = max_k IoU(b, B_k)   if coverage(b, B_1) >= coverage_tau (0.9) or not iou_gate, else 0
    R_dist = 1 - min_k d(b, B_k), clipped to [0, 1]

* ``accuracy`` is 1 when the trajectory's answer is right by the rule of :mod:`locus_reward.answers`: with choices,
  the option letter the answer names (``B``, ``(B)``, ``B. text``, ``The answer is B``, the option's own text) is the
  GT letter; without, the normalized short answers are equal (case, punctuation, articles, whitespace dropped;
  numbers compared as numbers).
* ``format`` (``format_penalty``): ``zero_one`` (default) 1 for a well-formed trajectory, else 0; ``deepeyes`` 0 /
  -1 (DeepEyes' convention). Well formed is the protocol parser's verdict: every turn a think block then only valid
  calls, or exactly one answer, and only the last turn answers.
* ``tool`` is 1 when the answer is right and at least one valid call was made (the calls the tool executed).
* ``b`` is each valid call's box mapped from the model's frame to original-image pixels and clipped to the image:
  the frame is the stored view image as the model saw it (:func:`locus_reward.frames.frame_extent` of
  ``view_width x view_height`` under the options' pixel limits: Qwen2.5-VL absolute pixels of the seen image,
  Qwen3-VL 0-1000), stretched linearly onto ``width x height``. It is the box the model wrote, not the crop the tool
  cut (which grows boxes under one merged patch a side); the two differ only for such tiny boxes.
* ``B_1 ⊂ ... ⊂ B_K`` are the nested GT boxes, smallest first. ``d`` (``distance``) is the normalized L1 distance:
  ``corner`` (default; :func:`locus_reward.boxes.corner_l1`, the mean of the four coordinate errors, x over the
  width, y over the height) or ``center`` (:func:`locus_reward.boxes.center_l1`); "the closest GT box" is the one
  at the smallest distance. Without GT boxes the grounding term is 0.
* Several crops (``crop_select``): ``best`` (default) scores the crop with the highest grounding, ``last`` the last
  valid call's, ``mean`` the mean grounding over all valid calls.

Open choices the paper leaves (``../shared/research/lfpc.md``) are these options, each with the stated default: the
format convention, the distance normalization and its mapping to a reward, the weights of the two grounding terms,
which crop is scored. Table 10's ablations are ``iou_gate=false`` ("- IoU Thresh") and ``iou_weight=0`` ("- IoU
Reward").

Keys (every value a float; EasyR1 logs the mean of each): ``overall``, ``accuracy``, ``format``, ``tool``,
``grounding`` (the Stage II term; Stage I reports it without adding it), ``tool_calls`` (valid calls),
``invalid_calls`` (rejected calls), ``turns`` (model turns), ``iou`` (plain max-over-boxes IoU of the selected crop),
``overlap`` (its coverage of ``B_1``), ``bbox_ratio`` (its area over the image's), ``no_answer``, ``gt_error``. Both
stages return the same keys, so their logs compare; ``iou``, ``overlap`` and ``grounding`` are 0 where the question
has no GT boxes or the trajectory no valid call.

Never raises on data: an unreadable ground truth (or one whose view the backbone cannot take, such as an aspect ratio
above 200) scores 0 on every key with ``gt_error=1``. Bad options raise TypeError/ValueError before anything is
scored, so a typo fails on the first validation batch instead of training on zeros.
"""

import inspect
from functools import lru_cache
from typing import Any, NamedTuple

from locus_reward import boxes, frames
from locus_reward.answers import is_correct
from locus_reward.lfpc_ground_truth import LfpcGroundTruth, loads
from locus_reward.options import LfpcOptions
from locus_reward.parsing import THINK_OPEN
from locus_reward.tool_calls import Trajectory, parse_trajectory


REWARD_NAME = "locus_lfpc"
REWARD_TYPE = "batch"
SCORE_KEYS = (
    "overall",
    "accuracy",
    "format",
    "tool",
    "grounding",
    "tool_calls",
    "invalid_calls",
    "turns",
    "iou",
    "overlap",
    "bbox_ratio",
    "no_answer",
    "gt_error",
)
_REWARD_INPUTS = inspect.Parameter(
    "reward_inputs", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=list[dict[str, Any]]
)


def compute_score_stage1(reward_inputs: list[dict[str, Any]], **options: Any) -> list[dict[str, float]]:
    """Stage I: ``acc_weight * accuracy + format_weight * format + tool_weight * tool``, one dict per input.

    ``options`` are the fields of :class:`locus_reward.options.LfpcOptions` (this function's signature lists them
    with their defaults). The grounding keys are computed for the logs but not added.

    A 2520 x 1680 original shown as a 1260 x 840 view (Qwen2.5-VL sees it as is: both sides are multiples of 28).
    The model zooms once, then answers right:

    >>> gt = ('{"answer": "C", "choices": ["stripes", "dots", "checkerboard", "plain"], '
    ...       '"boxes": [[1000, 600, 1040, 640], [960, 560, 1160, 720]], '
    ...       '"width": 2520, "height": 1680, "view_width": 1260, "view_height": 840}')
    >>> zoom = ('<think>Too small.</think><tool_call>{"name": "image_zoom_in_tool", '
    ...         '"arguments": {"bbox_2d": [490, 290, 540, 330], "label": "glyph"}}</tool_call>\\nuser\\n'
    ...         '<tool_response>\\nZoomed in on the image to the region [490, 290, 540, 330] with label glyph.\\n'
    ...         '</tool_response>\\nassistant\\n')
    >>> batch = [{"response": zoom + "<think>Checkered.</think><answer>C</answer>", "response_length": 90,
    ...           "ground_truth": gt},
    ...          {"response": "<think>Dots?</think><answer>B</answer>", "response_length": 9, "ground_truth": gt}]
    >>> [round(score["overall"], 4) for score in compute_score_stage1(batch)]  # 0.8 + 0.2 + 1.2; 0 + 0.2 + 0
    [2.2, 0.2]
    """
    settings = LfpcOptions.from_kwargs(options)
    return [_score(_field(item, "response"), _field(item, "ground_truth"), settings, 1) for item in reward_inputs]


def compute_score_stage2(reward_inputs: list[dict[str, Any]], **options: Any) -> list[dict[str, float]]:
    """Stage II: the Stage I reward plus ``iou_weight * R_IoU + distance_weight * R_dist``, one dict per input.

    The crop of the Stage I example, ``[490, 290, 540, 330]`` in the view, is ``[980, 580, 1080, 660]`` in the
    original: it covers the smallest GT box, its best IoU is with the second (8000 / 32000 = 0.25), and its corners
    are closest to the first (``(60 / 2520 + 40 / 1680) / 4``, so ``R_dist`` = 0.9881):

    >>> gt = ('{"answer": "C", "choices": ["stripes", "dots", "checkerboard", "plain"], '
    ...       '"boxes": [[1000, 600, 1040, 640], [960, 560, 1160, 720]], '
    ...       '"width": 2520, "height": 1680, "view_width": 1260, "view_height": 840}')
    >>> zoom = ('<think>Too small.</think><tool_call>{"name": "image_zoom_in_tool", '
    ...         '"arguments": {"bbox_2d": [490, 290, 540, 330], "label": "glyph"}}</tool_call>\\nuser\\n'
    ...         '<tool_response>\\nZoomed in on the image to the region [490, 290, 540, 330] with label glyph.\\n'
    ...         '</tool_response>\\nassistant\\n')
    >>> (score,) = compute_score_stage2([{"response": zoom + "<think>Checkered.</think><answer>C</answer>",
    ...                                   "response_length": 90, "ground_truth": gt}])
    >>> {key: round(score[key], 4) for key in ("overall", "grounding", "iou", "overlap", "tool_calls", "turns")}
    {'overall': 3.4381, 'grounding': 1.2381, 'iou': 0.25, 'overlap': 1.0, 'tool_calls': 1.0, 'turns': 2.0}
    >>> compute_score_stage2([], crop_select="first")
    Traceback (most recent call last):
    ...
    ValueError: unknown crop_select 'first'; expected one of best, last, mean
    """
    settings = LfpcOptions.from_kwargs(options)
    return [_score(_field(item, "response"), _field(item, "ground_truth"), settings, 2) for item in reward_inputs]


compute_score_stage1.__signature__ = LfpcOptions.signature(_REWARD_INPUTS)
compute_score_stage2.__signature__ = LfpcOptions.signature(_REWARD_INPUTS)


def score_response(response: str, ground_truth: str, stage: int = 2, **options: Any) -> dict[str, float]:
    """Score one decoded trajectory against one ground-truth string; ``options`` as for the compute functions."""
    if stage not in (1, 2):
        raise ValueError(f"stage must be 1 or 2, got {stage!r}")
    return _score(response, ground_truth, LfpcOptions.from_kwargs(options), stage)


class _Crop(NamedTuple):
    grounding: float
    iou: float
    overlap: float
    bbox_ratio: float


def _field(item: object, key: str) -> object:
    return item.get(key) if isinstance(item, dict) else None


def _score(response: object, ground_truth: object, options: LfpcOptions, stage: int) -> dict[str, float]:
    prepared = _prepare(ground_truth, options)
    if prepared is None:
        # the dataset validator should have rejected this row: score nothing and count it
        return dict.fromkeys(SCORE_KEYS, 0.0) | {"gt_error": 1.0}
    gt, extent = prepared
    trajectory = parse_trajectory(
        response,
        think_prefilled=options.think_prefilled,
        allow_empty_think=options.allow_empty_think,
        # what the chat template writes after "assistant\n" when a thinking template opens a new turn
        generation_prefix=THINK_OPEN + "\n" if options.think_prefilled else "",
    )
    accuracy = float(is_correct(trajectory.answer, gt.answer, gt.choices))
    if options.format_penalty == "deepeyes":
        fmt = 0.0 if trajectory.format_ok else -1.0
    else:
        fmt = float(trajectory.format_ok)
    valid = trajectory.valid_calls
    tool = float(accuracy == 1.0 and len(valid) > 0)
    crop = _selected_crop(trajectory, gt, extent, options)
    overall = options.acc_weight * accuracy + options.format_weight * fmt + options.tool_weight * tool
    if stage == 2:
        overall += crop.grounding
    return {
        "overall": overall,
        "accuracy": accuracy,
        "format": fmt,
        "tool": tool,
        "grounding": crop.grounding,
        "tool_calls": float(len(valid)),
        "invalid_calls": float(sum(not call.valid for call in trajectory.calls)),
        "turns": float(len(trajectory.turns)),
        "iou": crop.iou,
        "overlap": crop.overlap,
        "bbox_ratio": crop.bbox_ratio,
        "no_answer": float(trajectory.answer is None),
        "gt_error": 0.0,
    }


def _selected_crop(
    trajectory: Trajectory, gt: LfpcGroundTruth, extent: tuple[float, float], options: LfpcOptions
) -> _Crop:
    crops = [_crop(call.box, gt, extent, options) for call in trajectory.valid_calls]
    if not crops:
        return _Crop(0.0, 0.0, 0.0, 0.0)
    if options.crop_select == "last":
        return crops[-1]
    if options.crop_select == "mean":
        return _Crop(*(sum(values) / len(crops) for values in zip(*crops)))
    return max(crops, key=lambda crop: crop.grounding)  # the first of equals


def _crop(box: boxes.Box, gt: LfpcGroundTruth, extent: tuple[float, float], options: LfpcOptions) -> _Crop:
    original = frames.rescale_box(box, extent[0], extent[1], gt.width, gt.height)
    pred = boxes.clip_box(original, gt.width, gt.height)
    ratio = boxes.area(pred) / (gt.width * gt.height)
    if not gt.boxes:
        return _Crop(0.0, 0.0, 0.0, ratio)
    iou = max(boxes.iou(pred, target) for target in gt.boxes)
    overlap = boxes.coverage(pred, gt.boxes[0])
    r_iou = iou if overlap >= options.coverage_tau or not options.iou_gate else 0.0
    distance = boxes.corner_l1 if options.distance == "corner" else boxes.center_l1
    r_dist = min(1.0, max(0.0, 1.0 - min(distance(pred, target, gt.width, gt.height) for target in gt.boxes)))
    return _Crop(options.iou_weight * r_iou + options.distance_weight * r_dist, iou, overlap, ratio)


def _prepare(text: object, options: LfpcOptions) -> tuple[LfpcGroundTruth, tuple[float, float]] | None:
    # GRPO rollouts of one prompt share a ground-truth string, so short ones are parsed once per group
    if isinstance(text, str) and len(text) <= _CACHED_GT_CHARS:
        return _prepare_cached(text, options)
    return _prepare_uncached(text, options)


_CACHED_GT_CHARS = 4096  # a real ground truth (options and boxes included) is well under 1,000 characters


@lru_cache(maxsize=4096)
def _prepare_cached(text: str, options: LfpcOptions) -> tuple[LfpcGroundTruth, tuple[float, float]] | None:
    return _prepare_uncached(text, options)


def _prepare_uncached(text: object, options: LfpcOptions) -> tuple[LfpcGroundTruth, tuple[float, float]] | None:
    try:
        gt = loads(text)
        # the coordinate space the model wrote in: the view as it saw it (or 1000 x 1000 for relative frames)
        extent = frames.frame_extent(gt.view_width, gt.view_height, options.coord_frame, **options.pixel_kwargs)
    except (ValueError, ArithmeticError):
        return None
    return gt, extent
