"""Coordinate frames: stored-image pixels <-> the coordinates each backbone writes.

Ground truth is stored in float pixels of the stored full image (``W x H``). What the model writes depends on the
backbone:

* ``qwen2_5_vl`` (also MiMo-VL, which is Qwen2.5-VL-compatible): absolute pixels of the image the model *sees*.
  Inside EasyR1 that is the stored image after two resizes: EasyR1's ``process_image`` (scale by a square root to
  fit ``max_pixels``, or up to ``min_pixels``, truncating with ``int()``), then the processor's ``smart_resize``
  (multiples of 28, Python's round-half-to-even, the processor's own pixel limits).
* ``qwen3_vl``: relative integers 0-1000, so neither resize matters.
* ``original``: absolute pixels of the stored image (no conversion).

Pure Python on purpose: the reward runs in a Ray actor without torch, and the evaluator and data tooling import the
same functions so the rule has one home.

>>> seen_size(640, 480, "qwen2_5_vl", min_pixels=262144, max_pixels=4194304)
(644, 476)
>>> seen_size(500, 375, "qwen2_5_vl", min_pixels=262144, max_pixels=4194304)  # EasyR1 upsamples to 591x443 first
(588, 448)
>>> to_stored((0.0, 0.0, 644.0, 476.0), 640, 480, "qwen2_5_vl", min_pixels=262144, max_pixels=4194304)
(0.0, 0.0, 640.0, 480.0)
>>> to_model((64.0, 48.0, 320.0, 240.0), 640, 480, "qwen3_vl")
(100.0, 100.0, 500.0, 500.0)
"""

import math
from dataclasses import dataclass

from locus_reward.boxes import Box


@dataclass(frozen=True)
class Backbone:
    """How one family of models writes boxes."""

    coord_frame: str
    """name used in configs and reward kwargs"""
    relative: bool
    """True: coordinates are 0..1000 of the image; False: absolute pixels of the image the model sees"""
    factor: int
    """processor patch size x merge size; sides of the seen image are multiples of it"""
    processor_min_pixels: int
    """the checkpoint processor's own lower pixel limit (``size.shortest_edge``)"""
    processor_max_pixels: int
    """the checkpoint processor's own upper pixel limit (``size.longest_edge``)"""


BACKBONES: dict[str, Backbone] = {
    # Qwen2.5-VL-7B-Instruct / MiMo-VL-7B preprocessor_config.json: patch 14, merge 2, 3136..12845056 pixels.
    "qwen2_5_vl": Backbone(
        "qwen2_5_vl", relative=False, factor=28, processor_min_pixels=3136, processor_max_pixels=12845056
    ),
    # Qwen3-VL preprocessor_config.json: patch 16, merge 2, size {shortest_edge: 65536, longest_edge: 16777216}.
    "qwen3_vl": Backbone(
        "qwen3_vl", relative=True, factor=32, processor_min_pixels=65536, processor_max_pixels=16777216
    ),
}
COORD_FRAMES = ("qwen2_5_vl", "qwen3_vl", "original")
RELATIVE_SCALE = 1000.0
# EasyR1's DataConfig defaults, used when a caller does not name the data pixel limits.
EASYR1_MIN_PIXELS = 262144
EASYR1_MAX_PIXELS = 4194304


def check_coord_frame(coord_frame: str) -> str:
    """Return ``coord_frame`` or raise a ValueError naming the accepted values."""
    if coord_frame not in COORD_FRAMES:
        raise ValueError(f"unknown coord_frame {coord_frame!r}; expected one of {', '.join(COORD_FRAMES)}")
    return coord_frame


def easyr1_resize(width: int, height: int, min_pixels: int | None, max_pixels: int | None) -> tuple[int, int]:
    """Size after EasyR1's ``verl.utils.dataset.process_image`` (pinned commit b44b311).

    Downscale to fit ``max_pixels``, then upscale to reach ``min_pixels``; each step keeps the aspect ratio and
    truncates with ``int()``. ``None`` disables a limit.

    >>> easyr1_resize(500, 375, 262144, 4194304)
    (591, 443)
    """
    if max_pixels is not None and width * height > max_pixels:
        scale = math.sqrt(max_pixels / (width * height))
        width, height = int(width * scale), int(height * scale)
    if min_pixels is not None and width * height < min_pixels:
        scale = math.sqrt(min_pixels / (width * height))
        width, height = int(width * scale), int(height * scale)
    return width, height


def smart_resize(height: int, width: int, factor: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """Size after the Qwen-VL image processor's ``smart_resize`` (transformers 4.57; ``(height, width)`` order).

    Sides round to multiples of ``factor`` with Python's round-half-to-even, then the pixel count is brought within
    ``[min_pixels, max_pixels]``. Raises ValueError for aspect ratios above 200, as the processor does.

    >>> smart_resize(480, 640, 28, 3136, 12845056)
    (476, 644)
    >>> smart_resize(70, 70, 28, 56, 12845056)  # 70 / 28 = 2.5 rounds to 2 (half to even)
    (56, 56)
    """
    if max(height, width) / min(height, width) > 200:
        ratio = max(height, width) / min(height, width)
        raise ValueError(f"absolute aspect ratio must be smaller than 200, got {ratio}")
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def seen_size(
    width: int,
    height: int,
    coord_frame: str,
    min_pixels: int | None = EASYR1_MIN_PIXELS,
    max_pixels: int | None = EASYR1_MAX_PIXELS,
    processor_min_pixels: int | None = None,
    processor_max_pixels: int | None = None,
) -> tuple[int, int]:
    """``(width, height)`` of the image the model sees, for a stored image of ``width x height``.

    ``min_pixels``/``max_pixels`` are EasyR1's ``data.min_pixels``/``data.max_pixels``; the processor limits default
    to the released checkpoint's. ``original`` returns the stored size.
    """
    check_coord_frame(coord_frame)
    if coord_frame == "original":
        return width, height
    backbone = BACKBONES[coord_frame]
    width, height = easyr1_resize(width, height, min_pixels, max_pixels)
    h_bar, w_bar = smart_resize(
        height,
        width,
        backbone.factor,
        backbone.processor_min_pixels if processor_min_pixels is None else processor_min_pixels,
        backbone.processor_max_pixels if processor_max_pixels is None else processor_max_pixels,
    )
    return w_bar, h_bar


def frame_extent(width: int, height: int, coord_frame: str, **limits: int | None) -> tuple[float, float]:
    """Width and height of the coordinate space the model writes in (1000 x 1000 for relative frames).

    ``limits`` are the keyword arguments of :func:`seen_size`.
    """
    check_coord_frame(coord_frame)
    if coord_frame != "original" and BACKBONES[coord_frame].relative:
        return RELATIVE_SCALE, RELATIVE_SCALE
    seen_w, seen_h = seen_size(width, height, coord_frame, **limits)
    return float(seen_w), float(seen_h)


def budget_pixels(visual_tokens: int, coord_frame: str) -> int:
    """The most pixels an image may have to take at most ``visual_tokens`` tokens (``max_pixels`` of that budget).

    One visual token covers ``factor x factor`` pixels after the 2x2 merge (28 px a side for Qwen2.5-VL, 32 for
    Qwen3-VL), so the paper's 1,024- and 16,384-token budgets are ``N * factor ** 2`` pixels.

    >>> budget_pixels(1024, "qwen2_5_vl"), budget_pixels(16384, "qwen3_vl")
    (802816, 16777216)
    """
    factor = BACKBONES[coord_frame].factor
    return visual_tokens * factor * factor


def visual_tokens(width: int, height: int, coord_frame: str) -> int:
    """Visual tokens of an image the processor leaves at ``width x height`` (sides are multiples of the factor).

    >>> visual_tokens(1092, 728, "qwen2_5_vl")  # a 3000x2000 image at the 1,024-token budget
    1014
    """
    factor = BACKBONES[coord_frame].factor
    return (width // factor) * (height // factor)


def rescale_box(box: Box, from_w: float, from_h: float, to_w: float, to_h: float) -> Box:
    """Stretch a box from a ``from_w x from_h`` image to a ``to_w x to_h`` one (how every resize here maps boxes).

    Multiplying before dividing keeps integer-valued edges exact, so a box reaching the image's right edge lands
    exactly on the new edge (``x * (to_w / from_w)`` can overshoot it by one float step).

    >>> rescale_box((0, 0, 640, 429), 640, 429, 338, 226)
    (0.0, 0.0, 338.0, 226.0)
    """
    x1, y1, x2, y2 = box
    return (x1 * to_w / from_w, y1 * to_h / from_h, x2 * to_w / from_w, y2 * to_h / from_h)


def to_model(box: Box, width: int, height: int, coord_frame: str, **limits: int | None) -> Box:
    """Map a box in stored-image pixels to the coordinates the model writes (floats, not rounded)."""
    extent_w, extent_h = frame_extent(width, height, coord_frame, **limits)
    return rescale_box(box, width, height, extent_w, extent_h)


def to_stored(box: Box, width: int, height: int, coord_frame: str, **limits: int | None) -> Box:
    """Map a box the model wrote back to stored-image pixels (the inverse of :func:`to_model`)."""
    extent_w, extent_h = frame_extent(width, height, coord_frame, **limits)
    return rescale_box(box, extent_w, extent_h, width, height)
