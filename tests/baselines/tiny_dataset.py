"""A tiny LOCUS dataset in the builder's contract, written with pyarrow and PIL (no COCO needed)."""

import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from locus_data.problems import CUE_SEARCH_PROBLEM


SECRET_KEY = "sk-locus-test-0123456789abcdef"
"""the API key the tests put in the environment and then look for in every output"""

# alternating full-image sizes: 640x480 keeps its size in EasyR1, 500x375 is upsampled first (different frames)
SIZES = ((640, 480), (500, 375))


VAL_OFFSET = 100
"""val rows get image ids and boxes from here on, so no two rows of the dataset share either"""


def example_box(i: int) -> list[float]:
    """A distinct box per row, so the fake teacher can tell examples apart by the box in its prompt."""
    return [10.0 + i, 20.0, 60.0 + i, 90.0]


def box_text(i: int) -> str:
    """How row ``i``'s box appears in a prompt rendered with ``--teacher-coord-frame original``."""
    return "[" + ", ".join(str(round(v)) for v in example_box(i)) + "]"


def _encode(size: tuple[int, int], color: tuple[int, int, int], fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format=fmt)
    return buffer.getvalue()


def write_dataset(out: Path, n_train: int, n_val: int) -> Path:
    """``out/train.parquet`` and ``out/val.parquet``: JPEG full images, PNG cues, distinct colors per row."""
    out.mkdir(parents=True, exist_ok=True)
    for split, n, offset in (("train", n_train, 0), ("val", n_val, VAL_OFFSET)):
        rows = []
        for i in range(n):
            width, height = SIZES[i % 2]
            color = ((i * 37) % 256, (i * 91 + offset) % 256, 128)
            rows.append(
                {
                    "problem": CUE_SEARCH_PROBLEM,
                    "images": [
                        {"bytes": _encode((width, height), color, "JPEG"), "path": f"{offset + i}.jpg"},
                        {"bytes": _encode((40, 56), color[::-1], "PNG"), "path": f"{offset + i}_cue.png"},
                    ],
                    "answer": json.dumps({"box": example_box(offset + i), "width": width, "height": height}),
                    "image_id": offset + i,
                    "ann_id": -1 if i % 3 == 0 else 5000 + offset + i,
                    "size_bin": "tiny" if i % 2 else "small",
                    "cue_source": "object",
                    "area_ratio": 0.01,
                    "category_id": 1 + i % 5,
                }
            )
        if rows:
            pq.write_table(pa.Table.from_pylist(rows), out / f"{split}.parquet")
    return out
