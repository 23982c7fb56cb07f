"""The crop tool: a box in the model's view frame -> a crop cut from the ORIGINAL image, sized for the next turn.

Per call (:meth:`CropTool.__call__`):

1. Map the box from the view frame to original pixels (:meth:`locus_agent.view.View.to_original`, one linear map
   through :func:`locus_reward.frames.rescale_box`), clamp it to the image, and round outwards to whole pixels
   (``floor`` the top-left, ``ceil`` the bottom-right), so the crop holds all of the region the model asked for.
   A box wholly outside the image is rejected (``outside_image``).
2. **Minimum side**: a side shorter than the backbone's factor (28 px Qwen2.5-VL, 32 px Qwen3-VL) grows about its
   centre to that length, shifted to stay inside the image: a smaller region cannot fill one merged patch, and the
   processor would only upscale it. **Maximum aspect ratio 100:1**, after growing: a thinner sliver is rejected
   (``too_thin``) -- processors refuse ratios above 200, such slivers carry nothing, and DeepEyes and veRL use 100.
3. **Whole tokens**: when the crop fits the crop budget, its box grows by less than one factor per axis (about its
   centre, inside the image) to whole multiples of the factor, so the processor takes it as it is: the model sees
   original pixels, not a resampled copy, and no resize is paid per call (``crop_box``; ``box_orig`` stays the
   region the model asked for).
4. Cut the crop from the original, decoded once per question (the tool holds it), at original resolution.
5. A crop above the budget (or one the image cannot widen to whole tokens) is resized for the model with the
   processor's ``smart_resize`` at ``max_crop_tokens`` (``max_pixels = max_crop_tokens * factor**2``, the
   processor's ``min_pixels``), as the processor itself would, so its own resize is the identity on what it gets.

Crop modes (the paper's diagnostics, Tables 1, 5, 7): ``model`` hands the model its own region; ``gt`` the
ground-truth box with the highest IoU to the model's box (ties: the first, i.e. the smallest of nested boxes), cut the
same way; ``noise`` a uniform-noise image of the size the model's crop would have (seeded per question). Only the
image changes: the box the model wrote, its mapping and the tool turn's text stay the same.

A tool given ``max_crops`` (an engine's per-prompt image limit less the view) rejects the calls after that many
crops (``crop_limit``): vLLM refuses a prompt holding more images than it was started for.

A rejected call (the parser's reasons, or the tool's) returns a short text the model reads instead of a crop.
"""

import math
from dataclasses import dataclass, field
from typing import Any

from locus_agent.view import View
from locus_reward import boxes, frames
from locus_reward.boxes import Box
from locus_reward.tool_calls import TOOL_NAME, ToolCall


MAX_ASPECT = 100.0
"""longest side / shortest side of a crop after growing; above it the call is rejected"""
DEFAULT_MAX_CROP_TOKENS = 16384
"""visual tokens a crop may take (the paper's high budget): crops keep their resolution up to it"""
CROP_MODES = ("model", "gt", "noise")
TOOL_ERRORS = ("outside_image", "too_thin", "crop_limit")
"""reasons the tool itself rejects a call the parser accepted"""
ERROR_TEXT = {
    "unclosed": "the tool call is not closed with </tool_call>",
    "too_long": "the tool call is too long",
    "bad_json": "the tool call is not valid JSON",
    "wrong_name": f"unknown tool name; the only tool is {TOOL_NAME}",
    "no_bbox": "the tool call has no bbox_2d argument",
    "bad_box": "bbox_2d must be four numbers [x1, y1, x2, y2]",
    "empty_box": "the box has zero width or height",
    "inverted_box": "the box is inverted: it needs x1 < x2 and y1 < y2",
    "too_many_calls": "too many tool calls in one turn",
    "outside_image": "the box lies outside the image",
    "too_thin": f"the region is too thin: its sides may differ at most {MAX_ASPECT:.0f} times",
    "crop_limit": "no more zooming: this conversation holds the most images it may; answer now",
}
"""what the model reads (after ``Error: ``) for each rejected call"""

PixelBox = tuple[int, int, int, int]


@dataclass
class CropResult:
    """What one call did: the boxes in both frames and the image handed to the model, or why it was rejected."""

    box_view: Box | None
    """the box as the model wrote it (view frame); None when the call did not parse"""
    label: str | None
    """the call's ``label`` argument"""
    box_orig: PixelBox | None = None
    """the model's region in original pixels, clamped, rounded outwards and grown (None when rejected)"""
    crop_box: PixelBox | None = None
    """the original-pixel region cut: ``box_orig`` (or the chosen GT box, gt mode) grown to whole tokens; None for
    noise"""
    crop: Any = field(default=None, repr=False)
    """the image as cut (PIL), before the resize for the model (what ``--save-crops`` writes)"""
    image: Any = field(default=None, repr=False)
    """the image handed to the model: ``crop`` resized to at most the crop budget"""
    visual_tokens: int = 0
    """visual tokens of ``image``"""
    error: str | None = None
    """None, or why the call was rejected (a parser reason or one of ``TOOL_ERRORS``)"""

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def crop_size(self) -> tuple[int, int] | None:
        """``(w, h)`` of the crop as cut."""
        return None if self.crop is None else self.crop.size

    @property
    def message(self) -> str:
        """The line of the tool turn that tells the model what happened (the crop's image precedes a success)."""
        if self.error is not None:
            return f"Error: {ERROR_TEXT.get(self.error, self.error)}."
        label = f" with label {self.label}" if self.label else ""
        return f"Zoomed in on the image to the region {format_box(self.box_view)}{label}."


def format_box(box: Box | None) -> str:
    """A box as the model wrote it: ``[10, 20, 110.5, 95]`` (whole numbers without a decimal point).

    >>> format_box((10.0, 20.0, 110.5, 95.0))
    '[10, 20, 110.5, 95]'
    """
    if box is None:
        return "[]"
    return "[" + ", ".join(str(int(v)) if float(v).is_integer() else repr(float(v)) for v in box) + "]"


def pixel_box(box: Box, width: int, height: int) -> PixelBox | None:
    """A float box clamped to a ``width x height`` image and rounded outwards to whole pixels; None if nothing is left.

    A tiny tolerance keeps float noise from a mapping (``999.9999999`` for 1000) from adding a pixel row.

    >>> pixel_box((10.2, -5.0, 20.7, 30.0000000001), 100, 100)
    (10, 0, 21, 30)
    >>> pixel_box((120.0, 0.0, 130.0, 10.0), 100, 100) is None
    True
    """
    eps = 1e-6
    x1, y1 = max(0, math.floor(box[0] + eps)), max(0, math.floor(box[1] + eps))
    x2, y2 = min(width, math.ceil(box[2] - eps)), min(height, math.ceil(box[3] - eps))
    if x2 <= x1 or y2 <= y1:
        return None
    return x1, y1, x2, y2


def grow_to_min_side(box: PixelBox, min_side: int, width: int, height: int) -> PixelBox:
    """Grow each side shorter than ``min_side`` about its centre, shifted to stay inside the image.

    >>> grow_to_min_side((50, 50, 60, 90), 28, 100, 100)  # 10 px wide: grows to 28 about x = 55
    (41, 50, 69, 90)
    >>> grow_to_min_side((0, 0, 5, 5), 28, 100, 100)  # at the corner: shifted inside
    (0, 0, 28, 28)
    >>> grow_to_min_side((0, 0, 5, 5), 28, 20, 100)  # an image narrower than 28 px: its whole width
    (0, 0, 20, 28)
    """
    x1, y1, x2, y2 = box
    x1, x2 = _grow(x1, x2, min(min_side, width), width)
    y1, y2 = _grow(y1, y2, min(min_side, height), height)
    return x1, y1, x2, y2


def _grow(low: int, high: int, need: int, limit: int) -> tuple[int, int]:
    if high - low >= need:
        return low, high
    start = math.floor((low + high) / 2 - need / 2)
    start = min(max(start, 0), limit - need)
    return start, start + need


class CropTool:
    """The crop tool of one question: holds the decoded original and the view the model sees."""

    def __init__(
        self,
        original: Any,
        view: View,
        max_crop_tokens: int = DEFAULT_MAX_CROP_TOKENS,
        min_pixels: int | None = None,
        mode: str = "model",
        gt_boxes: list[Box] | tuple[Box, ...] = (),
        seed: int = 0,
        max_crops: int | None = None,
    ):
        """``original``: the PIL image the view was made from (converted to RGB and decoded here, once).

        ``min_pixels``: the processor's lower pixel limit for the crop's resize (None: the released checkpoint's).
        ``gt_boxes``: ground-truth boxes in original pixels (needed by ``mode="gt"``); ``seed``: the noise mode's.
        ``max_crops``: crops this tool hands out at most (an engine's per-prompt image limit less the view; vLLM
        refuses a prompt with more images); later calls are rejected with ``crop_limit``. None: no limit.
        """
        if mode not in CROP_MODES:
            raise ValueError(f"unknown crop mode {mode!r}; expected one of {', '.join(CROP_MODES)}")
        if mode == "gt" and not gt_boxes:
            raise ValueError("crop mode gt needs ground-truth boxes, and this question has none")
        if isinstance(max_crop_tokens, bool) or not isinstance(max_crop_tokens, int) or max_crop_tokens < 1:
            raise ValueError(f"max_crop_tokens must be a positive integer, got {max_crop_tokens!r}")
        if tuple(original.size) != view.original_size:
            raise ValueError(f"the original is {original.size}, but the view was made from {view.original_size}")
        # decoded once per question: every call cuts from this copy
        self.original = original.convert("RGB") if original.mode != "RGB" else original
        self.original.load()
        self.view = view
        self.mode = mode
        self.gt_boxes = [tuple(float(v) for v in box) for box in gt_boxes]
        self.min_side = view.factor
        backbone = frames.BACKBONES[view.coord_frame]
        self.min_pixels = backbone.processor_min_pixels if min_pixels is None else int(min_pixels)
        self.max_pixels = frames.budget_pixels(max_crop_tokens, view.coord_frame)
        self._seed = seed
        self._rng = None
        if max_crops is not None and (isinstance(max_crops, bool) or not isinstance(max_crops, int) or max_crops < 0):
            raise ValueError(f"max_crops must be a non-negative integer or None, got {max_crops!r}")
        self.max_crops = max_crops
        self.crops = 0
        """crops handed out so far"""

    def locate(self, box_view: Box) -> tuple[PixelBox | None, str | None]:
        """The model's box in original pixels (clamped, rounded outwards, grown), or None and why it is rejected."""
        width, height = self.original.size
        box = pixel_box(self.view.to_original(box_view), width, height)
        if box is None:
            return None, "outside_image"
        box = grow_to_min_side(box, self.min_side, width, height)
        w, h = box[2] - box[0], box[3] - box[1]
        if max(w, h) / min(w, h) > MAX_ASPECT:
            return None, "too_thin"
        return box, None

    def __call__(self, call: ToolCall) -> CropResult:
        """Execute one parsed call."""
        if call.error is not None:
            return CropResult(call.box, call.label, error=call.error)
        box_orig, error = self.locate(call.box)
        if error is None and self.max_crops is not None and self.crops >= self.max_crops:
            error = "crop_limit"
        if error is not None:
            return CropResult(call.box, call.label, error=error)
        region = self._gt_region(box_orig) if self.mode == "gt" else box_orig
        region = self.whole_tokens(region)
        if self.mode == "noise":
            crop_box, crop = None, self._noise(region[2] - region[0], region[3] - region[1])
        else:
            crop_box, crop = region, self.original.crop(region)
        image, tokens = self.for_model(crop)
        self.crops += 1
        return CropResult(call.box, call.label, box_orig, crop_box, crop, image, tokens)

    def whole_tokens(self, box: PixelBox) -> PixelBox:
        """``box`` grown about its centre (inside the image) to whole multiples of the factor, when that fits the
        crop budget; else ``box`` itself (its crop is then resized for the model)."""
        width, height = self.original.size
        factor = self.min_side
        need_w = -(-(box[2] - box[0]) // factor) * factor
        need_h = -(-(box[3] - box[1]) // factor) * factor
        if need_w > width or need_h > height or not self.min_pixels <= need_w * need_h <= self.max_pixels:
            return box
        x1, x2 = _grow(box[0], box[2], need_w, width)
        y1, y2 = _grow(box[1], box[3], need_h, height)
        return x1, y1, x2, y2

    def for_model(self, crop: Any) -> tuple[Any, int]:
        """``crop`` resized as the processor would (its ``smart_resize`` at the crop budget), and its visual tokens."""
        factor = self.min_side
        height, width = frames.smart_resize(crop.height, crop.width, factor, self.min_pixels, self.max_pixels)
        image = crop
        if (width, height) != crop.size:
            from PIL import Image  # the Qwen-VL image processor resizes bicubic

            image = crop.resize((width, height), Image.Resampling.BICUBIC)
        return image, frames.visual_tokens(width, height, self.view.coord_frame)

    def _gt_region(self, box_orig: PixelBox) -> PixelBox:
        # the GT box that best matches the model's (max() keeps the first of equals: the smallest nested box)
        best = max(self.gt_boxes, key=lambda gt: boxes.iou(tuple(map(float, box_orig)), gt))
        width, height = self.original.size
        region = pixel_box(best, width, height)
        if region is None:  # a GT box outside the image is a data error the manifest check reports first
            raise ValueError(f"ground-truth box {list(best)} lies outside the {width}x{height} image")
        return grow_to_min_side(region, self.min_side, width, height)

    def _noise(self, width: int, height: int) -> Any:
        import numpy as np
        from PIL import Image

        if self._rng is None:
            self._rng = np.random.default_rng(self._seed)
        return Image.fromarray(self._rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB")
