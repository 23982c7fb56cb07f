"""Context-suppressed benchmark copies (Table 1): every pixel outside the GT boxes set to black.

The canvas size and the scale stay unchanged, so the model gets the same number of image tokens at the same
positions and only the context is gone. A pixel is kept when it overlaps a box (boxes have float corners; a pixel
``x`` spans ``[x, x + 1)``). Images are written as PNG so the kept pixels are bit-identical to the decoded input.

Layouts: a V* folder (boxes from each ``.json``; the copy has the same layout and reads with ``--benchmark vstar``)
and the RefCOCO jsonl (one image per line; the copy's jsonl points at the suppressed images).
"""

import json
import math
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from locus_data.errors import UserError
from locus_data.images import load_image
from locus_data.outputs import atomic_write_text, check_output
from locus_eval.benchmarks.items import read_jsonl, require_field, xywh_to_xyxy
from locus_eval.benchmarks.vstar import load_vstar


def suppress_image(image, boxes: list[list[float]]):
    """A copy of ``image`` (PIL) with everything outside ``boxes`` (``[x1, y1, x2, y2]`` pixels) black."""
    pixels = np.asarray(image.convert("RGB"))
    keep = np.zeros(pixels.shape[:2], dtype=bool)
    height, width = keep.shape
    for x1, y1, x2, y2 in boxes:
        c0, c1 = max(0, math.floor(x1)), min(width, math.ceil(x2))
        r0, r1 = max(0, math.floor(y1)), min(height, math.ceil(y2))
        keep[r0:r1, c0:c1] = True
    return Image.fromarray(np.where(keep[..., None], pixels, 0).astype(np.uint8))


def suppress_vstar(src: str | Path, dst: str | Path) -> int:
    src, dst = Path(src), Path(dst)
    count = 0
    for item in load_vstar(src):
        category, stem = item.name.split("/")
        (dst / category).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / category / f"{stem}.json", dst / category / f"{stem}.json")
        suppress_image(load_image(item.image), item.boxes).save(dst / category / f"{stem}.png")
        count += 1
    return count


def suppress_refcoco(src: str | Path, dst: str | Path) -> int:
    src, dst = Path(src), Path(dst)
    if src.suffix != ".jsonl":
        raise ValueError("suppress reads the RefCOCO jsonl layout ({image, bbox [x, y, w, h], refexp})")
    rows = read_jsonl(src)
    if not rows:
        raise UserError(f"{src} holds no RefCOCO rows; nothing to suppress")
    # the source images are inputs too: a copy written over their folder would black them out in place
    check_output(
        dst, [src, *(src.parent / str(row.get("image", "")) for row in rows if row.get("image"))], expect="dir"
    )
    (dst / "images").mkdir(parents=True, exist_ok=True)

    lines = []
    for i, row in enumerate(rows):
        where = str(i + 1)
        image = load_image(src.parent / require_field(row, "image", src, where), f"{src}:{where} image")
        box = xywh_to_xyxy(require_field(row, "bbox", src, where))
        suppress_image(image, [box]).save(dst / "images" / f"{i}.png")
        lines.append(json.dumps({**row, "image": f"images/{i}.png"}))
    atomic_write_text(dst / src.name, "\n".join(lines) + "\n")
    return len(lines)


def suppress_benchmark(benchmark: str, src: str | Path, dst: str | Path) -> int:
    """Write the suppressed copy of a benchmark; returns the number of images written."""
    # suppression never overwrites the benchmark: --out may not be, hold or sit inside --data (nor its images)
    check_output(dst, [src], expect="dir")
    if benchmark == "vstar":
        return suppress_vstar(src, dst)
    if benchmark == "refcoco":
        return suppress_refcoco(src, dst)
    raise ValueError(f"no GT boxes to suppress around in {benchmark!r}; supported: vstar, refcoco")
