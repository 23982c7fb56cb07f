"""The LOCUS reward as a TRL reward function, scored in the frame the processor shows the model.

Under TRL no EasyR1 ``process_image`` runs: the model sees the processor's own ``smart_resize`` of the stored image.
So the reward is :func:`locus_reward.cue_search.compute_score` with EasyR1's pre-resize switched off and the
processor's pixel limits as ``processor_*_pixels`` (:meth:`locus_reward.options.PixelLimits.processor_only`); the
frame rule itself stays in :mod:`locus_reward.frames`.

Besides the reward it returns, the function logs what EasyR1's validation logs (mean IoU, ACC@0.5, ACC@0.75, format
rate, parse-fail rate) through TRL's ``log_metric``: ``cue_search/<key>`` per training step, and
``eval_cue_search/<key>`` on the validation split every ``eval_steps``. Scores are computed once per batch.
"""

from collections.abc import Callable
from functools import partial, update_wrapper
from typing import Any

from locus_agent.processor import pixel_limits
from locus_reward.cue_search import compute_score
from locus_reward.options import PixelLimits
from locus_train.trl.config import RewardConfig


METRIC_PREFIX = "cue_search"
LOGGED_KEYS = ("overall", "iou", "acc50", "acc75", "format", "parse_fail", "gt_error")
"""the reward keys logged as ``cue_search/<key>`` (train) and ``eval_cue_search/<key>`` (validation)"""


def completion_text(completion: Any) -> str:
    """The text of one TRL completion: a string, or chat messages whose last turn holds the answer.

    >>> completion_text([{"role": "assistant", "content": "<answer>[1, 2, 3, 4]</answer>"}])
    '<answer>[1, 2, 3, 4]</answer>'
    """
    if isinstance(completion, str):
        return completion
    content = completion[-1]["content"] if completion else ""
    if isinstance(content, list):  # content parts: keep the text ones, in order
        return "".join(part.get("text") or "" for part in content if part.get("type") == "text")
    return content or ""


def cue_search_reward(
    completions: list[Any],
    answer: list[str],
    *,
    processor_min_pixels: int | None = None,
    processor_max_pixels: int | None = None,
    log_metric: Callable[[str, float], None] | None = None,
    **kwargs: Any,
) -> list[float]:
    """LOCUS ``overall`` reward per completion; ``answer`` is the dataset's ground-truth JSON column.

    ``kwargs`` take the reward options of the TRL recipe's ``reward`` section (``coord_frame``, ``format_weight``,
    ``think_prefilled``, ``variant`` ...: :class:`locus_train.trl.config.RewardConfig`); the other keyword arguments
    TRL passes (prompts, images, trainer_state, ...) are ignored. Bind the options with :func:`make_reward_func`.

    A 640 x 480 image shown by a processor with Qwen2.5-VL's released limits is 644 x 476; a right answer in that
    frame scores 1.0, the same box in stored pixels does not:

    >>> gt = '{"box": [608.0, 444.0, 624.0, 456.0], "width": 640, "height": 480}'
    >>> seen = [{"role": "assistant", "content": "<think>.</think><answer>[611.8, 440.3, 627.9, 452.2]</answer>"}]
    >>> stored = [{"role": "assistant", "content": "<think>.</think><answer>[608, 444, 624, 456]</answer>"}]
    >>> [round(r, 2) for r in cue_search_reward([seen, stored], [gt, gt], processor_min_pixels=3136,
    ...                                         processor_max_pixels=12845056)]
    [1.0, 0.42]

    EasyR1 first upsamples a 500 x 375 image to 591 x 443 and shows 588 x 448; TRL shows it as 504 x 364:

    >>> gt = '{"box": [0.0, 0.0, 250.0, 187.5], "width": 500, "height": 375}'
    >>> cue_search_reward(["<think>.</think><answer>[0, 0, 252, 182]</answer>"], [gt], processor_min_pixels=3136,
    ...                   processor_max_pixels=12845056)
    [1.0]
    """
    scores = compute_score(
        [
            {"response": completion_text(c), "response_length": 0, "ground_truth": a}
            for c, a in zip(completions, answer)
        ],
        **{key: value for key, value in kwargs.items() if key in _REWARD_OPTIONS},
        **PixelLimits.processor_only(processor_min_pixels, processor_max_pixels).pixel_kwargs,
    )
    if log_metric is not None and scores:
        for key in LOGGED_KEYS:
            log_metric(f"{METRIC_PREFIX}/{key}", sum(s[key] for s in scores) / len(scores))
    return [s["overall"] for s in scores]


_REWARD_OPTIONS = frozenset(RewardConfig.__dataclass_fields__)


def make_reward_func(options: dict[str, Any], processor: Any) -> Callable[..., list[float]]:
    """:func:`cue_search_reward` bound to the reward options and the processor's frame (named for TRL's logs)."""
    low, high = pixel_limits(processor)
    bound = partial(cue_search_reward, processor_min_pixels=low, processor_max_pixels=high, **options)
    return update_wrapper(bound, cue_search_reward)
