"""EasyR1's image resize: what ``verl.utils.dataset.process_image`` (b44b311) does to each image of a row.

The prompt-length check and the evaluator feed the model through :func:`process_image`, so what they measure and
generate from is what training sees. The size rule itself lives in :func:`locus_reward.frames.easyr1_resize`, which
the reward uses to rebuild the frame the model answered in.
"""

from typing import Any

from PIL import Image

from locus_data.images import load_image
from locus_reward.frames import easyr1_resize


def process_image(entry: Any, min_pixels: int | None, max_pixels: int | None, name: object = None) -> Image.Image:
    """EasyR1's ``process_image``: fit ``max_pixels``, then reach ``min_pixels`` (``int()`` sizes), then RGB.

    An image over the pixel limit, truncated or unreadable is a one-line UserError naming ``name``
    (:func:`locus_data.images.load_image`).
    """
    image = load_image(entry, name, mode=None)
    size = easyr1_resize(image.width, image.height, min_pixels, max_pixels)
    if size != image.size:
        image = image.resize(size)  # PIL's default filter: EasyR1 calls resize(size) without one
    return image if image.mode == "RGB" else image.convert("RGB")
