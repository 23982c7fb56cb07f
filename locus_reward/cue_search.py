"""LOCUS cue-search reward for EasyR1: where is the crop (the visual cue) in the full image?

Load it as ``worker.reward.reward_function=<repo>/locus_reward/cue_search.py:compute_score`` and pass the options
as ``worker.reward.reward_function_kwargs``. EasyR1 imports this file under its own module name, so it imports the
installed ``locus_reward`` package by absolute name.

Per response::

    overall = (1 - format_weight) * localization + format_weight * format

``format`` is 1.0 for ``<think>...</think><answer>box</answer>`` and nothing else (:mod:`locus_reward.parsing`).
Localization is not gated on format, as in EasyR1's own examples: a right box in a sloppy wrapper still earns most of
the reward. The box the model wrote is mapped from its coordinate frame to the stored image
(:mod:`locus_reward.frames`), clipped to it, and compared with the ground truth window. ``localization`` is

* ``iou``: plain IoU (the paper's reward);
* ``giou``: ``(GIoU + 1) / 2``, which still ranks boxes that miss the cue;
* ``lfpc``: ``(1 - l1_weight) * IoU * [coverage >= coverage_tau] + l1_weight * (1 - L1)``, where ``coverage`` is the
  share of the GT box the prediction covers and ``L1`` is the mean absolute corner error with x divided by the image
  width and y by its height (in [0, 1]). The gate stops partial overlaps from earning IoU; the L1 term gives a
  graded signal for tiny cues even when a whole rollout group has IoU 0, and oversized boxes cannot exploit it
  because their corners are far off.

Whatever the variant, the ``iou``, ``acc50`` and ``acc75`` keys report plain IoU so runs stay comparable, and
``accuracy`` holds the variant's localization term (so ``algorithm.filter_key=accuracy`` filters on it). The
``gt_error`` and ``parse_fail`` keys count unreadable ground truth and responses without a usable box; EasyR1 logs
the mean of every key.

Responses and ground truth never raise: a malformed ground truth (or one whose image the backbone cannot take, such
as an aspect ratio above 200) scores 0 with ``gt_error=1``. Bad options are a configuration error and raise
ValueError before anything is scored, so a typo fails on the first validation batch instead of training on zeros.
"""

import inspect
from functools import lru_cache
from typing import Any

from locus_reward import boxes, frames
from locus_reward.ground_truth import GroundTruth, loads
from locus_reward.options import CueSearchOptions
from locus_reward.parsing import parse_response


REWARD_NAME = "locus_cue_search"
REWARD_TYPE = "batch"
SCORE_KEYS = ("overall", "format", "accuracy", "iou", "acc50", "acc75", "gt_error", "parse_fail")


def compute_score(reward_inputs: list[dict[str, Any]], **options: Any) -> list[dict[str, float]]:
    """Score a batch of ``{"response", "response_length", "ground_truth"}`` dicts; one dict per input, same order.

    ``options`` are the fields of :class:`locus_reward.options.CueSearchOptions` (its signature lists them with
    their defaults). ``min_pixels``/``max_pixels`` must be the data config's ``data.min_pixels``/``data.max_pixels``
    (recipes pass them by interpolation); ``processor_*_pixels`` default to the released checkpoint's processor
    limits. They only matter for ``coord_frame="qwen2_5_vl"``. Raises TypeError for an unknown option and ValueError
    for an out-of-range one, never for data.

    >>> gt = '{"box": [608.0, 444.0, 624.0, 456.0], "width": 640, "height": 480}'
    >>> batch = [{"response": "<think>Lower right.</think><answer>[611.8, 440.3, 627.9, 452.2]</answer>",
    ...           "response_length": 30, "ground_truth": gt}]
    >>> [round(score["overall"], 6) for score in compute_score(batch)]
    [1.0]
    >>> compute_score([], coord_frame="qwen2.5")
    Traceback (most recent call last):
    ...
    ValueError: unknown coord_frame 'qwen2.5'; expected one of qwen2_5_vl, qwen3_vl, original
    """
    settings = CueSearchOptions.from_kwargs(options)
    return [_score(_field(item, "response"), _field(item, "ground_truth"), settings) for item in reward_inputs]


compute_score.__signature__ = CueSearchOptions.signature(
    inspect.Parameter("reward_inputs", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=list[dict[str, Any]])
)


def score_response(response: str, ground_truth: str, **options: Any) -> dict[str, float]:
    """Score one response against one ground-truth string; ``options`` are :func:`compute_score`'s keywords.

    A 16 x 12 px cue near the corner of a 640 x 480 image. Qwen2.5-VL sees that image as 644 x 476 and writes
    absolute pixels of what it sees, so the right answer is in that frame:

    >>> gt = '{"box": [608.0, 444.0, 624.0, 456.0], "width": 640, "height": 480}'
    >>> score = score_response("<think>Lower right.</think><answer>[611.8, 440.3, 627.9, 452.2]</answer>", gt)
    >>> round(score["iou"], 6), score["format"], round(score["overall"], 6)
    (1.0, 1.0, 1.0)

    The same box written in stored-image pixels is in the wrong frame and loses two thirds of its IoU:

    >>> score = score_response("<think>Lower right.</think><answer>[608, 444, 624, 456]</answer>", gt)
    >>> round(score["iou"], 2), score["acc50"]
    (0.35, 0.0)

    A malformed answer (inverted box) scores 0 and is counted as a parse failure:

    >>> score = score_response("<think>Here.</think><answer>[624, 456, 608, 444]</answer>", gt)
    >>> score["overall"], score["parse_fail"]
    (0.0, 1.0)
    """
    return _score(response, ground_truth, CueSearchOptions.from_kwargs(options))


def _field(item: object, key: str) -> object:
    return item.get(key) if isinstance(item, dict) else None


def _score(response: object, ground_truth: object, options: CueSearchOptions) -> dict[str, float]:
    parsed = parse_response(response, options.think_prefilled, options.allow_empty_think)
    parse_fail = float(parsed.box is None)
    gt = _read_ground_truth(ground_truth)
    if gt is not None:
        try:
            # without a box the GT box stands in: the frame is still computed, so a GT image the backbone cannot
            # take (aspect ratio above 200 after EasyR1's resize) is counted whatever the response
            box = parsed.box or gt.box
            stored = frames.to_stored(box, gt.width, gt.height, options.coord_frame, **options.pixel_kwargs)
        except (ValueError, ArithmeticError):
            gt = None
    if gt is None:
        # the dataset validator should have rejected this row: score nothing and count it
        return _scores(0.0, 0.0, 0.0, options, gt_error=1.0, parse_fail=parse_fail)
    fmt = float(parsed.format_ok)
    if parsed.box is None:
        return _scores(fmt, 0.0, 0.0, options, gt_error=0.0, parse_fail=parse_fail)
    pred = boxes.clip_box(stored, gt.width, gt.height)
    iou = boxes.iou(pred, gt.box)
    return _scores(fmt, _localization(pred, gt, iou, options), iou, options, gt_error=0.0, parse_fail=parse_fail)


def _localization(pred: boxes.Box, gt: GroundTruth, iou: float, options: CueSearchOptions) -> float:
    if options.variant == "giou":
        return (boxes.giou(pred, gt.box) + 1.0) / 2.0
    if options.variant == "lfpc":
        gated = iou if boxes.coverage(pred, gt.box) >= options.coverage_tau else 0.0
        closeness = 1.0 - boxes.corner_l1(pred, gt.box, gt.width, gt.height)
        return (1.0 - options.l1_weight) * gated + options.l1_weight * closeness
    return iou


def _scores(
    fmt: float, localization: float, iou: float, options: CueSearchOptions, *, gt_error: float, parse_fail: float
) -> dict[str, float]:
    weight = options.format_weight
    return {
        "overall": (1.0 - weight) * localization + weight * fmt,
        "format": fmt,
        "accuracy": localization,
        "iou": iou,
        "acc50": float(iou >= 0.5),
        "acc75": float(iou >= 0.75),
        "gt_error": gt_error,
        "parse_fail": parse_fail,
    }


def _read_ground_truth(text: object) -> GroundTruth | None:
    # GRPO rollouts of one prompt share a ground-truth string, so short ones are parsed once per group
    if isinstance(text, str) and len(text) <= _CACHED_GT_CHARS:
        return _read_short_ground_truth(text)
    return _load_or_none(text)


_CACHED_GT_CHARS = 512  # a real ground truth is under 100 characters; longer strings are junk not worth keeping


@lru_cache(maxsize=4096)
def _read_short_ground_truth(text: str) -> GroundTruth | None:
    return _load_or_none(text)


def _load_or_none(text: object) -> GroundTruth | None:
    try:
        return loads(text)
    except ValueError:
        return None
