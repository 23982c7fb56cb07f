"""Reading a built LOCUS dataset (``DATA/{train,val}.parquet``): its columns, and its rows each with a stable key.

Every reader of our parquet files goes through :func:`read_batches` (columns by the names of
:mod:`locus_data.schema`; a missing column or an unreadable file is one UserError naming the file). Rows are read one
Parquet batch at a time, so annotating or exporting 100K examples never holds every image in memory. :class:`Row`
images come back as bytes whether the dataset stores ``{"bytes", "path"}`` structs (the default) or plain file paths
(``image_mode=paths``).

A row's key is ``<split>/<row index>-<hash>``, where the hash covers the row's ``answer`` and ``image_id``: the row
index alone would silently pair old annotations with new examples if the dataset were rebuilt with another seed or
config, while the hash makes such annotations simply not match.

>>> example_key("train", 123, '{"box": [1.0, 2.0, 3.0, 4.0], "width": 8, "height": 8}', 42)
'train/000123-481594bf'
"""

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from locus_data.config import SPLITS, split_path
from locus_data.errors import UserError
from locus_data.schema import ANSWER, IMAGE_ID, IMAGES, PROBLEM


REQUIRED_COLUMNS = (PROBLEM, IMAGES, ANSWER, IMAGE_ID)
BATCH_ROWS = 64


def unreadable(path: Path, err: Exception) -> UserError:
    """The one-line error for a split file that is empty, truncated or not Parquet at all."""
    reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return UserError(
        f"{path} is not a readable Parquet file ({reason}); rebuild the dataset (locus-data build --out {path.parent})"
    )


def open_parquet(path: Path) -> pq.ParquetFile:
    """``pq.ParquetFile(path)``; a folder, a zero-byte, truncated or garbage file is a UserError naming it."""
    if Path(path).is_dir():
        check_split_file(path)
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


def check_dataset_dir(data_dir: str | Path, what: str = "dataset") -> Path:
    """``data_dir`` as a Path; UserError naming it when it is missing or a file (the fix: its parent folder)."""
    data_dir = Path(data_dir)
    if data_dir.is_file():
        raise UserError(f"{what} {data_dir} is a file; give the dataset folder that holds it ({data_dir.parent})")
    if not data_dir.is_dir():
        raise UserError(f"dataset directory not found: {data_dir}")
    return data_dir


def check_split_file(path: str | Path) -> Path:
    """``path`` as a Path; UserError when it is a folder or missing (say which, and how to get the file)."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path} is a directory, expected a Parquet file; rebuild the dataset")
    if not path.is_file():
        raise UserError(f"{path} does not exist; build the dataset first (locus-data build --out {path.parent})")
    return path


def split_files(data_dir: str | Path, splits: list[str] | tuple[str, ...] = SPLITS) -> dict[str, Path]:
    """``{split: parquet path}`` for the splits present; raises UserError if none is, or a named one is missing.

    A file given as the folder, or split files that are folders, are named as such (not as "missing").
    """
    data_dir = check_dataset_dir(data_dir)
    files = {s: split_path(data_dir, s) for s in splits if split_path(data_dir, s).is_file()}
    if not files:
        folders = [split_path(data_dir, s) for s in splits if split_path(data_dir, s).is_dir()]
        if folders:
            check_split_file(folders[0])
        raise UserError(f"no {' or '.join(split_path('.', s).name for s in splits)} in {data_dir}")
    return files


def require_columns(path: Path, names: Sequence[str], columns: Sequence[str]) -> None:
    """The one "not a LOCUS dataset" check: UserError naming ``path`` and the ``columns`` it lacks.

    >>> require_columns(Path("x.parquet"), ["a", "problem"], ["problem", "images"])
    Traceback (most recent call last):
    ...
    locus_data.errors.UserError: x.parquet is not a LOCUS dataset: missing column(s) images (it has a, problem)
    """
    missing = [c for c in columns if c not in names]
    if missing:
        shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
        raise UserError(f"{path} is not a LOCUS dataset: missing column(s) {', '.join(missing)} (it has {shown})")


def count_rows(path: Path) -> int:
    """Rows in a parquet file, from its footer (nothing else is read)."""
    return open_parquet(Path(path)).metadata.num_rows


def read_batches(
    path: str | Path,
    columns: Sequence[str] | None = None,
    *,
    optional: Sequence[str] = (),
    limit: int | None = None,
    batch_rows: int | None = BATCH_ROWS,
    row_groups: Sequence[int] | None = None,
) -> Iterator[pa.RecordBatch | pa.Table]:
    """The rows of a LOCUS parquet file in order, ``batch_rows`` at a time (None: in one table).

    ``columns`` are read by their :mod:`locus_data.schema` names (None: every column) and must be there; those of
    ``optional`` are read too where the file has them. ``limit`` stops after that many rows, ``row_groups`` reads
    only those groups. Raises UserError naming the file for a missing column, or a file that is empty, truncated or
    not Parquet at all, whether its footer or a later page is broken.
    """
    path = Path(path)
    parquet = open_parquet(path)
    names = parquet.schema_arrow.names
    if columns is not None:
        require_columns(path, names, columns)
        columns = [*columns, *(c for c in optional if c in names and c not in columns)]
    left = limit
    try:
        if batch_rows is None:
            groups = range(parquet.num_row_groups) if row_groups is None else row_groups
            table = parquet.read_row_groups(groups, columns=columns)  # not read_table: it loads pandas
            yield table if limit is None else table.slice(0, limit)
            return
        for batch in parquet.iter_batches(batch_size=batch_rows, columns=columns, row_groups=row_groups):
            if left is not None:
                if left <= 0:
                    return
                batch = batch.slice(0, left)
                left -= batch.num_rows
            yield batch
    except (pa.ArrowException, OSError) as err:  # a footer that reads but pages that do not
        raise unreadable(path, err) from None


def iter_rows(split: str, path: Path) -> Iterator[Row]:
    """Rows of one split in file order."""
    index = 0
    for batch in read_batches(path, REQUIRED_COLUMNS):
        columns = batch.to_pydict()
        for problem, images, answer, image_id in zip(*(columns[c] for c in REQUIRED_COLUMNS)):
            key = example_key(split, index, answer, image_id)
            yield Row(key, split, index, problem, answer, images)
            index += 1
