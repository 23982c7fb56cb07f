"""Streaming the rows of a built LOCUS dataset (``DATA/{train,val}.parquet``), each with a stable key.

Rows are read one Parquet batch at a time, so annotating or exporting 100K examples never holds every image in
memory. Images come back as bytes whether the dataset stores ``{"bytes", "path"}`` structs (the default) or plain
file paths (``image_mode=paths``).

A row's key is ``<split>/<row index>-<hash>``, where the hash covers the row's ``answer`` and ``image_id``: the row
index alone would silently pair old annotations with new examples if the dataset were rebuilt with another seed or
config, while the hash makes such annotations simply not match.

>>> example_key("train", 123, '{"box": [1.0, 2.0, 3.0, 4.0], "width": 8, "height": 8}', 42)
'train/000123-481594bf'
"""

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from locus_data.config import SPLITS
from locus_data.errors import UserError
from locus_data.schema import ANSWER, IMAGES, PROBLEM


REQUIRED_COLUMNS = (PROBLEM, IMAGES, ANSWER, "image_id")
BATCH_ROWS = 64


def unreadable(path: Path, err: Exception) -> UserError:
    """The one-line error for a split file that is empty, truncated or not Parquet at all."""
    reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return UserError(
        f"{path} is not a readable Parquet file ({reason}); rebuild the dataset (locus-data build --out {path.parent})"
    )


def open_parquet(path: Path) -> pq.ParquetFile:
    """``pq.ParquetFile(path)``; a zero-byte, truncated or garbage file is a UserError naming it."""
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as err:
        raise unreadable(path, err) from None


@dataclass
class Row:
    """One dataset example as the baseline tools need it."""

    key: str
    """stable key, see :func:`example_key`"""
    split: str
    """train or val"""
    index: int
    """position in the split's parquet file"""
    problem: str
    """the dataset's question text with two ``<image>`` markers"""
    answer: str
    """ground-truth JSON string, unchanged"""
    images: list
    """the ``images`` cell as stored: ``{"bytes", "path"}`` dicts or path strings, full image first"""

    def image_bytes(self, i: int) -> bytes:
        """Encoded bytes of image ``i`` (0: full image, 1: cue)."""
        image = self.images[i]
        if isinstance(image, dict) and image.get("bytes") is not None:
            return image["bytes"]
        path = image.get("path") if isinstance(image, dict) else image
        try:
            return Path(path).read_bytes()
        except (OSError, TypeError) as err:
            raise UserError(f"{self.key}: cannot read image {i} ({path!r}): {err}") from None


def example_key(split: str, index: int, answer: str, image_id: object) -> str:
    """``split/index-hash``: the position in the split plus a short hash of the row's ground truth and image."""
    digest = hashlib.sha1(f"{answer}\x1f{image_id}".encode()).hexdigest()[:8]
    return f"{split}/{index:06d}-{digest}"


def image_format(image: bytes) -> str:
    """``png``, ``jpeg`` or ``webp`` from the encoded bytes' signature (what a ``data:`` URL or a file name needs).

    >>> image_format(b"\\x89PNG\\r\\n\\x1a\\n...")
    'png'
    """
    if image.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if image.startswith(b"\xff\xd8"):
        return "jpeg"
    if image[:4] == b"RIFF" and image[8:12] == b"WEBP":
        return "webp"
    raise UserError("image is neither PNG, JPEG nor WebP; re-encode the dataset images")


def split_files(data_dir: str | Path, splits: list[str] | tuple[str, ...] = SPLITS) -> dict[str, Path]:
    """``{split: parquet path}`` for the splits present; raises UserError if none is, or a named one is missing."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise UserError(f"dataset directory not found: {data_dir}")
    files = {s: data_dir / f"{s}.parquet" for s in splits if (data_dir / f"{s}.parquet").is_file()}
    if not files:
        raise UserError(f"no {' or '.join(f'{s}.parquet' for s in splits)} in {data_dir}")
    return files


def count_rows(path: Path) -> int:
    return pq.ParquetFile(path).metadata.num_rows


def iter_rows(split: str, path: Path) -> Iterator[Row]:
    """Rows of one split in file order."""
    parquet = pq.ParquetFile(path)
    missing = [c for c in REQUIRED_COLUMNS if c not in parquet.schema_arrow.names]
    if missing:
        raise UserError(f"{path} is not a LOCUS dataset: missing column(s) {', '.join(missing)}")
    index = 0
    for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=list(REQUIRED_COLUMNS)):
        columns = batch.to_pydict()
        for problem, images, answer, image_id in zip(*(columns[c] for c in REQUIRED_COLUMNS)):
            key = example_key(split, index, answer, image_id)
            yield Row(key, split, index, problem, answer, images)
            index += 1
