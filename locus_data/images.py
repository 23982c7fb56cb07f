"""Opening a dataset's image entry the way EasyR1 does: one home for image I/O of built rows, and for the image-size
limit every command applies.

EasyR1 (``verl.utils.dataset.process_image`` at b44b311) accepts a ``{"bytes": ...}`` struct, raw bytes, a path
string or a PIL image; a struct with only a path fails there, so it fails here too, before a cluster is booked.
The validator, the preview, the training-side resize (:mod:`locus_train.images`) and the evaluator all open images
through :func:`open_image`.

Hostile images. An image larger than :func:`max_image_pixels` (default 178,956,970 px, the size at which PIL, and
so EasyR1's data loader, refuses to decode with ``DecompressionBombError``; set ``LOCUS_MAX_IMAGE_PIXELS`` to lower
it) is :class:`ImageTooLarge`; one that cannot be identified or decoded (truncated, garbage) is :class:`BadImage`.
Both are UserErrors naming the image, so a single-image command ends with one line, and ValueErrors, so readers
that skip bad rows keep doing so; builds skip and count them under their own reasons (``image_too_large``,
``corrupt_image``).

>>> check_image_size(20000, 20000, "row 0")
Traceback (most recent call last):
...
locus_data.images.ImageTooLarge: row 0 is 20000x20000 = 400,000,000 px, over the 178,956,970 px limit (PIL's, \
which EasyR1 hits); shrink the image or drop the row (LOCUS_MAX_IMAGE_PIXELS sets a lower limit)
"""

import os
import re
from io import BytesIO
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from locus_data.errors import UserError


MAX_IMAGE_PIXELS_ENV = "LOCUS_MAX_IMAGE_PIXELS"
DEFAULT_MAX_IMAGE_PIXELS = 2 * 89_478_485
"""PIL's own refusal size (``2 * PIL.Image.MAX_IMAGE_PIXELS`` by default): EasyR1 cannot decode anything larger"""


class BadImage(UserError, ValueError):
    """An image that cannot be identified or decoded (truncated, garbage, an unsupported format)."""


class ImageTooLarge(BadImage):
    """An image over :func:`max_image_pixels`."""


def max_image_pixels() -> int:
    """The pixel-count limit: ``$LOCUS_MAX_IMAGE_PIXELS`` if set (a positive integer), else the default."""
    raw = os.environ.get(MAX_IMAGE_PIXELS_ENV, "").strip().replace("_", "").replace(",", "")
    if not raw:
        return DEFAULT_MAX_IMAGE_PIXELS
    if not raw.isdigit() or int(raw) < 1:
        raise UserError(f"{MAX_IMAGE_PIXELS_ENV}={os.environ[MAX_IMAGE_PIXELS_ENV]!r} is not a positive integer")
    return int(raw)


def check_image_size(width: int, height: int, name: object) -> None:
    """Raise ImageTooLarge naming ``name`` when ``width * height`` is over the limit (header arithmetic only)."""
    limit = max_image_pixels()
    if width * height > limit:
        raise ImageTooLarge(
            f"{name} is {width}x{height} = {width * height:,} px, over the {limit:,} px limit (PIL's, which EasyR1 "
            f"hits); shrink the image or drop the row ({MAX_IMAGE_PIXELS_ENV} sets a lower limit)"
        )


def open_image(entry: Any, name: object = None) -> Image.Image:
    """Open (lazily: header only) a dataset image entry the way EasyR1 does; ValueError for what EasyR1 rejects.

    ``name`` (a file, a ``split row i`` label) is how errors name the image; a path entry names itself. An image
    PIL cannot identify is BadImage, one over the pixel limit ImageTooLarge (both ValueErrors and UserErrors).
    """
    if isinstance(entry, Image.Image):
        return entry
    if isinstance(entry, dict):
        if not entry.get("bytes"):
            raise ValueError(f"image struct has no bytes (path={entry.get('path')!r}); EasyR1 cannot open it")
        source: Any = BytesIO(entry["bytes"])
    elif isinstance(entry, (bytes, bytearray)):
        source = BytesIO(entry)
    elif isinstance(entry, (str, Path)):
        source, name = entry, name or entry
    else:
        raise ValueError(f"image entry is {type(entry).__name__}, expected a {{bytes, path}} struct, bytes or a path")
    label = name if name is not None else "image"
    try:
        image = Image.open(source)
    except Image.DecompressionBombError as err:  # over PIL's own limit: PIL says how many pixels, not the sides
        found = re.search(r"\((\d+) pixels\)", str(err))
        pixels = f"{int(found.group(1)):,} px" if found else "too many pixels"
        raise ImageTooLarge(
            f"{label} has {pixels}, over the {min(max_image_pixels(), DEFAULT_MAX_IMAGE_PIXELS):,} px limit (PIL's, "
            f"which EasyR1 hits); shrink the image or drop the row"
        ) from None
    except UnidentifiedImageError:
        raise BadImage(f"{label} is not an image PIL can read (PNG, JPEG, WebP, ...)") from None
    except FileNotFoundError:
        raise BadImage(f"{label} does not exist") from None
    except OSError as err:
        raise BadImage(f"{label} cannot be read: {err}") from None
    check_image_size(*image.size, label)
    return image


def load_image(entry: Any, name: object = None, mode: str | None = "RGB") -> Image.Image:
    """:func:`open_image` plus the full decode (converted to ``mode``; None keeps it): a truncated or corrupt file
    is BadImage naming ``name``, never a decoder traceback."""
    image = open_image(entry, name)
    label = name if name is not None else (entry if isinstance(entry, (str, Path)) else "image")
    try:
        image.load()
        return image.convert(mode) if mode is not None and image.mode != mode else image
    except (OSError, SyntaxError, ValueError) as err:
        raise BadImage(f"{label} cannot be decoded ({err}); re-encode or drop it") from None
