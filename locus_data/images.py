"""Opening a dataset's image entry the way EasyR1 does: one home for image I/O of built rows.

EasyR1 (``verl.utils.dataset.process_image`` at b44b311) accepts a ``{"bytes": ...}`` struct, raw bytes, a path
string or a PIL image; a struct with only a path fails there, so it fails here too, before a cluster is booked.
The validator, the preview, the training-side resize (:mod:`locus_train.images`) and the evaluator all open images
through :func:`open_image`.
"""

from io import BytesIO
from pathlib import Path
from typing import Any

from PIL import Image


def open_image(entry: Any) -> Image.Image:
    """Open (lazily: header only) a dataset image entry the way EasyR1 does; ValueError for what EasyR1 rejects."""
    if isinstance(entry, Image.Image):
        return entry
    if isinstance(entry, dict):
        if not entry.get("bytes"):
            raise ValueError(f"image struct has no bytes (path={entry.get('path')!r}); EasyR1 cannot open it")
        return Image.open(BytesIO(entry["bytes"]))
    if isinstance(entry, (bytes, bytearray)):
        return Image.open(BytesIO(entry))
    if isinstance(entry, (str, Path)):
        return Image.open(entry)
    raise ValueError(f"image entry is {type(entry).__name__}, expected a {{bytes, path}} struct, bytes or a path")
