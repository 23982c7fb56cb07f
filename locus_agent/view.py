"""The full image as the model sees it: the picture handed to the model and the frame its boxes are written in.

A box the model writes is in its *view frame*: absolute pixels of the image it saw (Qwen2.5-VL, MiMo-VL) or 0-1000
of it (Qwen3-VL). Every resize on the way is a whole-image stretch, so the view frame maps to the original image's
pixels by one linear map, from :attr:`View.extent` to :attr:`View.original_size`
(:func:`locus_reward.frames.rescale_box`; the crop tool does it).

Two ways to get a view, and the loop assumes neither:

* :meth:`View.at_budget` -- ``locus-eval agent``: the processor's own ``smart_resize`` at a visual-token budget
  (``max_pixels = N * factor**2``, the processor's default ``min_pixels``), no EasyR1 pre-resize. The view's image is
  resized here to exactly the seen size, so the processor's own resize is the identity and no backend can drift
  from the frame (a 3000x2000 image is seen as 1092x728 at 1,024 tokens, 2996x1988 at 16,384).
* :meth:`View.from_stored` -- under EasyR1: the stored view image goes to the engine as it is, and the seen size is
  what EasyR1's ``process_image`` and the processor make of it under the run's pixel limits.

>>> from PIL import Image
>>> view = View.at_budget(Image.new("RGB", (3000, 2000)), "qwen2_5_vl", 1024)
>>> view.image.size, view.extent, view.tokens
((1092, 728), (1092.0, 728.0), 1014)
>>> View.at_budget(Image.new("RGB", (3000, 2000)), "qwen3_vl", 1024).extent
(1000.0, 1000.0)
"""

import dataclasses
from dataclasses import dataclass
from typing import Any

from locus_reward import frames
from locus_reward.boxes import Box
from locus_reward.options import PixelLimits


AGENT_FRAMES = ("qwen2_5_vl", "qwen3_vl")
"""coordinate frames an agent can write in (``original`` is no model's frame)"""


def check_agent_frame(coord_frame: str) -> str:
    """Return ``coord_frame`` or raise a ValueError naming the frames an agent can write in."""
    if coord_frame not in AGENT_FRAMES:
        raise ValueError(f"coord_frame {coord_frame!r} is no model's view frame; expected one of {AGENT_FRAMES}")
    return coord_frame


@dataclass(frozen=True)
class View:
    """The full image as handed to the model, and the frame the model's boxes are written in."""

    image: Any
    """the PIL image handed to the model (for :meth:`at_budget` already at ``seen_size``)"""
    original_size: tuple[int, int]
    """``(W, H)`` of the original image, the frame crops are cut in"""
    seen_size: tuple[int, int]
    """``(w, h)`` pixels the model sees after every resize (multiples of the backbone's factor)"""
    extent: tuple[float, float]
    """width and height of the frame boxes are written in: ``seen_size``, or 1000 x 1000 for Qwen3-VL"""
    coord_frame: str
    """qwen2_5_vl (also MiMo-VL) or qwen3_vl"""

    @property
    def tokens(self) -> int:
        """Visual tokens of the view (one per ``factor x factor`` seen pixels)."""
        return frames.visual_tokens(*self.seen_size, self.coord_frame)

    @property
    def factor(self) -> int:
        """Pixels per visual token a side (28 Qwen2.5-VL, 32 Qwen3-VL): the crop tool's minimum crop side."""
        return frames.BACKBONES[self.coord_frame].factor

    def to_original(self, box: Box) -> Box:
        """A box in the view frame, in float pixels of the original image (not clamped, not rounded)."""
        return frames.rescale_box(box, *self.extent, *self.original_size)

    @classmethod
    def at_budget(
        cls, original: Any, coord_frame: str, max_visual_tokens: int, min_pixels: int | None = None
    ) -> "View":
        """The processor's own view of ``original`` at ``max_visual_tokens`` (``locus-eval agent``).

        ``min_pixels`` is the processor's lower limit (None: the released checkpoint's, from
        :data:`locus_reward.frames.BACKBONES`). The returned image is resized to the seen size (bicubic, as the
        Qwen-VL image processor resizes), so handing it to a processor whose ``max_pixels`` is at least the budget
        changes nothing.
        """
        check_agent_frame(coord_frame)
        if isinstance(max_visual_tokens, bool) or not isinstance(max_visual_tokens, int) or max_visual_tokens < 1:
            raise ValueError(f"max_visual_tokens must be a positive integer, got {max_visual_tokens!r}")
        if min_pixels is None:
            min_pixels = frames.BACKBONES[coord_frame].processor_min_pixels
        limits = PixelLimits.processor_only(min_pixels, frames.budget_pixels(max_visual_tokens, coord_frame))
        view = cls.from_stored(original, original.size, coord_frame, limits)
        if view.seen_size != original.size:
            from PIL import Image  # the view is resized as the Qwen-VL image processor resizes: bicubic

            view = dataclasses.replace(view, image=original.resize(view.seen_size, Image.Resampling.BICUBIC))
        return view

    @classmethod
    def from_stored(cls, image: Any, original_size: tuple[int, int], coord_frame: str, limits: PixelLimits) -> "View":
        """The view of a stored image that the engine resizes itself (EasyR1: ``process_image``, then the processor).

        ``image`` goes to the engine unchanged; the frame is the seen size under ``limits`` (the run's data and
        processor pixel limits), mapped to the ``original_size`` the crops are cut from.
        """
        check_agent_frame(coord_frame)
        kwargs = limits.pixel_kwargs
        seen = frames.seen_size(image.width, image.height, coord_frame, **kwargs)
        extent = frames.frame_extent(image.width, image.height, coord_frame, **kwargs)
        return cls(image, (int(original_size[0]), int(original_size[1])), seen, extent, coord_frame)
