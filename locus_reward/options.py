"""Reward options and pixel limits: the one home of every setting a LOCUS reward reads.

EasyR1 calls a reward as ``compute_score(reward_inputs, **worker.reward.reward_function_kwargs)``, so the options
arrive as flat keyword arguments. Each reward turns them into one frozen dataclass here with
:meth:`Options.from_kwargs` (unknown names are a TypeError with the closest name, bad values a ValueError naming the
option), and every other caller -- the TRL reward, the evaluators, the CLIs -- builds the same dataclass, so defaults
and checks exist once.
Adding an option is a one-file change: a field with its docstring (and its check in ``__post_init__``) below.

The classes nest by what they describe:

* :class:`PixelLimits` -- the four pixel limits that decide the image a Qwen-VL model sees, and so the frame its boxes
  are written in (EasyR1's ``process_image`` pre-resize, then the processor's ``smart_resize``);
* :class:`FrameOptions` -- those limits plus how the model writes: its coordinate frame and its think block;
* :class:`CueSearchOptions` -- the LOCUS cue-search reward (:mod:`locus_reward.cue_search`);
* :class:`LfpcOptions` -- the LFPC Stage I / Stage II agent rewards (:mod:`locus_reward.lfpc`).

>>> CueSearchOptions.from_kwargs({"coord_frame": "qwen3_vl", "min_pixels": None}).min_pixels is None
True
>>> CueSearchOptions.from_kwargs({"format_wieght": 0.1})
Traceback (most recent call last):
...
TypeError: unknown reward option 'format_wieght'; did you mean 'format_weight'?
>>> PixelLimits(min_pixels=0)
Traceback (most recent call last):
...
ValueError: min_pixels must be a positive integer or null, got 0
"""

import dataclasses
import difflib
import inspect
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from locus_reward import frames


T = TypeVar("T", bound="Options")


class Options:
    """Shared behaviour of the option dataclasses: construction from flat keyword arguments, and their checks."""

    @classmethod
    def from_kwargs(cls: type[T], kwargs: Mapping[str, Any]) -> T:
        """Build from flat keyword arguments (EasyR1's ``reward_function_kwargs``); unknown names are a TypeError."""
        names = [field.name for field in dataclasses.fields(cls)]
        for key in kwargs:
            if key not in names:
                close = difflib.get_close_matches(str(key), names, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f"; expected one of {', '.join(names)}"
                raise TypeError(f"unknown reward option {key!r}{hint}")
        return cls(**kwargs)

    @classmethod
    def signature(cls, *leading: inspect.Parameter) -> inspect.Signature:
        """A function signature of ``leading`` parameters then every option as a keyword with its default.

        Rewards set it as their ``__signature__``, so ``help(compute_score)`` lists the options without a second
        copy of their defaults.
        """
        options = [
            inspect.Parameter(field.name, inspect.Parameter.KEYWORD_ONLY, default=field.default)
            for field in dataclasses.fields(cls)
        ]
        return inspect.Signature([*leading, *options])

    def _check_number(self, name: str, low: float, high: float) -> None:
        value = getattr(self, name)
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not numeric or not math.isfinite(value) or not low <= value <= high:
            span = f"in [{low:g}, {high:g}]" if math.isfinite(high) else f">= {low:g}"
            raise ValueError(f"{name} must be a number {span}, got {value!r}")

    def _check_bool(self, name: str) -> None:
        if not isinstance(getattr(self, name), bool):
            raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")

    def _check_choice(self, name: str, choices: tuple[str, ...]) -> None:
        if getattr(self, name) not in choices:
            raise ValueError(f"unknown {name} {getattr(self, name)!r}; expected one of {', '.join(choices)}")


@dataclass(frozen=True)
class PixelLimits(Options):
    """The pixel limits that decide the image a Qwen-VL model sees, and so the frame its boxes are written in."""

    min_pixels: int | None = frames.EASYR1_MIN_PIXELS
    """EasyR1 ``data.min_pixels``: ``process_image`` upscales smaller images to it (null: no EasyR1 pre-resize floor,
    as under TRL and ``locus-eval agent``, where only the processor resizes)"""
    max_pixels: int | None = frames.EASYR1_MAX_PIXELS
    """EasyR1 ``data.max_pixels``: ``process_image`` downscales larger images to it (null: no pre-resize cap)"""
    processor_min_pixels: int | None = None
    """the processor's own lower limit in ``smart_resize`` (null: the released checkpoint's)"""
    processor_max_pixels: int | None = None
    """the processor's own upper limit in ``smart_resize`` (null: the released checkpoint's)"""

    def __post_init__(self) -> None:
        for field in dataclasses.fields(PixelLimits):
            value = getattr(self, field.name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
                raise ValueError(f"{field.name} must be a positive integer or null, got {value!r}")

    @property
    def pixel_kwargs(self) -> dict[str, int | None]:
        """The limits as keyword arguments of :func:`locus_reward.frames.seen_size` and the functions built on it."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(PixelLimits)}

    @classmethod
    def processor_only(cls, processor_min_pixels: int | None, processor_max_pixels: int | None) -> "PixelLimits":
        """Limits of a pipeline with no EasyR1 pre-resize: the processor's ``smart_resize`` alone (TRL, agents).

        >>> PixelLimits.processor_only(3136, 1024 * 28 * 28).pixel_kwargs
        {'min_pixels': None, 'max_pixels': None, 'processor_min_pixels': 3136, 'processor_max_pixels': 802816}
        """
        return cls(None, None, processor_min_pixels, processor_max_pixels)


@dataclass(frozen=True)
class FrameOptions(PixelLimits):
    """How a model's response is read: the pixel limits above, its coordinate frame, and its think block."""

    coord_frame: str = "qwen2_5_vl"
    """how the model writes boxes: qwen2_5_vl (also MiMo-VL) absolute pixels of the seen image, qwen3_vl 0-1000,
    original stored-image pixels"""
    think_prefilled: bool = False
    """the chat template opens the think block (Qwen3-VL-Thinking), so responses start inside it"""
    allow_empty_think: bool = True
    """an empty ``<think></think>`` (MiMo-VL when it does not reason) counts as well formed"""

    def __post_init__(self) -> None:
        super().__post_init__()
        frames.check_coord_frame(self.coord_frame)
        for name in ("think_prefilled", "allow_empty_think"):
            self._check_bool(name)

    @property
    def limits(self) -> PixelLimits:
        """Only the pixel limits (what frame conversions take)."""
        return PixelLimits(**self.pixel_kwargs)


CUE_SEARCH_VARIANTS = ("iou", "giou", "lfpc")


@dataclass(frozen=True)
class CueSearchOptions(FrameOptions):
    """Options of the LOCUS cue-search reward (:func:`locus_reward.cue_search.compute_score`)."""

    format_weight: float = 0.1
    """overall = (1 - format_weight) * localization + format_weight * format"""
    variant: str = "iou"
    """localization term: iou (the paper's), giou ((GIoU + 1) / 2) or lfpc (coverage-gated IoU plus corner L1)"""
    coverage_tau: float = 0.9
    """lfpc: share of the ground-truth box a prediction must cover to earn its IoU"""
    l1_weight: float = 0.5
    """lfpc: weight of the corner-L1 closeness term"""

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check_choice("variant", CUE_SEARCH_VARIANTS)
        for name in ("format_weight", "coverage_tau", "l1_weight"):
            self._check_number(name, 0.0, 1.0)


FORMAT_PENALTIES = ("zero_one", "deepeyes")
DISTANCES = ("corner", "center")
CROP_SELECTIONS = ("best", "last", "mean")


@dataclass(frozen=True)
class LfpcOptions(FrameOptions):
    """Options of the LFPC Stage I / Stage II rewards (:mod:`locus_reward.lfpc`); weights default to Table 12's."""

    acc_weight: float = 0.8
    """weight of the accuracy term (1 when the answer is right)"""
    format_weight: float = 0.2
    """weight of the format term"""
    tool_weight: float = 1.2
    """weight of the tool term (1 when the answer is right and at least one valid crop call was made)"""
    format_penalty: str = "zero_one"
    """format term: zero_one (1 well formed, 0 not) or deepeyes (0 well formed, -1 not; DeepEyes' convention)"""
    coverage_tau: float = 0.9
    """Stage II: share of the smallest GT box a crop must cover to earn its IoU"""
    iou_gate: bool = True
    """Stage II: pay the IoU only above coverage_tau (false: always; Table 10 "- IoU Thresh")"""
    iou_weight: float = 1.0
    """Stage II: weight of the IoU term, max IoU over the nested GT boxes (0: Table 10 "- IoU Reward")"""
    distance_weight: float = 1.0
    """Stage II: weight of the distance term, 1 - normalized L1 distance to the closest GT box"""
    distance: str = "corner"
    """Stage II: distance term between corners (mean of the four coordinates) or centres"""
    crop_select: str = "best"
    """Stage II: which crop of several is scored: best (highest grounding), last, or the mean over crops"""

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check_choice("format_penalty", FORMAT_PENALTIES)
        self._check_choice("distance", DISTANCES)
        self._check_choice("crop_select", CROP_SELECTIONS)
        self._check_bool("iou_gate")
        for name in ("acc_weight", "format_weight", "tool_weight", "iou_weight", "distance_weight"):
            self._check_number(name, 0.0, math.inf)
        self._check_number("coverage_tau", 0.0, 1.0)
