"""The VQA manifest: questions about high-resolution images, for training and evaluating crop-tool agents (LFPC).

One JSON object per line (``.jsonl``; a ``.parquet`` file with the same columns also reads)::

    {"id": "q0001", "image": "images/q0001.jpg", "question": "What pattern fills the small square?",
     "choices": ["horizontal stripes", "vertical stripes", "checkerboard", "diagonal stripes"], "answer": "C",
     "boxes": [[2010, 1402, 2046, 1438], [1930, 1330, 2150, 1550], [1600, 1000, 2500, 1900]]}

* ``id``: unique non-empty string. ``image``: a path relative to the manifest's folder, or absolute.
  ``question``: non-empty string. ``answer``: with ``choices`` the option's letter (``A``-``H``), else a short answer.
* ``choices`` (optional): 2-8 option texts, in letter order.
* ``boxes`` (optional): nested GT boxes ``[x1, y1, x2, y2]`` in pixels of the image as stored (exclusive corners),
  smallest first, each inside the next and all inside the image (checked against its header).
* ``view_image`` (optional, added by resolution selection): the image the model is shown instead of the original,
  a path like ``image``; it must be the whole original resized down -- no side larger than the original's, the same
  aspect up to the rounding of a Qwen resize (:func:`view_problem`). Crops are still cut from ``image``.
* Any other field passes through untouched (a category, the ``selection`` record of resolution selection); a field
  one typo away from a known one is refused, so ``"boxs"`` does not silently drop the boxes.

The answer, choice and box rules are the reward's (:mod:`locus_reward.lfpc_ground_truth`), so a manifest that
reads here gives ground truths the LFPC rewards accept (:meth:`VqaItem.ground_truth`). Problems are one line naming
the place and the field: ``manifest.jsonl:7: answer: missing ...`` (lines count from 1; Parquet rows from 0).
"""

import difflib
import json
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from locus_data.config import SPLITS, split_path
from locus_data.errors import UserError
from locus_data.images import open_image
from locus_data.outputs import atomic_write_text, check_output
from locus_data.schema import (
    VQA_ANSWER,
    VQA_BOXES,
    VQA_CHOICES,
    VQA_ID,
    VQA_IMAGE,
    VQA_QUESTION,
    VQA_SELECTION,
    VQA_VIEW_IMAGE,
)
from locus_reward import lfpc_ground_truth
from locus_reward.boxes import Box


# the fields every reader and writer of a manifest uses (named once, in locus_data.schema); resolution selection adds
# the last two (the downsampled view the model is shown, and how it was chosen)
ID, IMAGE, QUESTION, ANSWER, CHOICES, BOXES = VQA_ID, VQA_IMAGE, VQA_QUESTION, VQA_ANSWER, VQA_CHOICES, VQA_BOXES
VIEW_IMAGE, SELECTION = VQA_VIEW_IMAGE, VQA_SELECTION
REQUIRED_FIELDS = (ID, IMAGE, QUESTION, ANSWER)
KNOWN_FIELDS = (*REQUIRED_FIELDS, CHOICES, BOXES, VIEW_IMAGE, SELECTION)
MANIFEST_NAME = "manifest.jsonl"
"""the manifest's name inside a dataset folder (``locus-data synth-vqa`` writes it)"""
SUFFIXES = (".jsonl", ".parquet")


@dataclass(frozen=True)
class VqaItem:
    """One question of a manifest, checked."""

    id: str
    """unique id"""
    image: Path
    """absolute path of the original image"""
    question: str
    """the question text (without options)"""
    answer: str
    """the option letter with choices, else the short answer"""
    width: int
    """original image width (from its header)"""
    height: int
    """original image height"""
    choices: tuple[str, ...] | None = None
    """option texts in letter order, or None"""
    boxes: tuple[Box, ...] = ()
    """nested GT boxes in original pixels, smallest first"""
    extra: dict[str, Any] = field(default_factory=dict)
    """every other field of the row, as read (``view_image`` included, as written)"""
    view_image: Path | None = None
    """absolute path of the row's ``view_image`` (set by the reader), or None: the model is shown the original"""
    view_width: int | None = None
    """view image width (from its header), or None"""
    view_height: int | None = None
    """view image height, or None"""

    def ground_truth(self, view_width: int | None = None, view_height: int | None = None) -> str:
        """The LFPC reward's ``ground_truth`` string; the view defaults to the original image itself."""
        return lfpc_ground_truth.dumps(
            self.answer,
            self.width,
            self.height,
            view_width=view_width,
            view_height=view_height,
            choices=self.choices,
            boxes=self.boxes,
        )

    def to_row(self, root: Path) -> dict[str, Any]:
        """The manifest row: the image (and view image) relative to ``root`` (the manifest's folder) when it lies
        inside it, else absolute."""
        row: dict[str, Any] = {ID: self.id, IMAGE: _relative(self.image, root), QUESTION: self.question}
        if self.choices is not None:
            row[CHOICES] = list(self.choices)
        row[ANSWER] = self.answer
        if self.boxes:
            row[BOXES] = [[_plain(v) for v in box] for box in self.boxes]
        row |= self.extra
        if self.view_image is not None:
            row[VIEW_IMAGE] = _relative(self.view_image, root)
        return row


VIEW_ROUNDING = 32
"""pixels a resize may move each side of a view (Qwen resizes round sides to multiples of 28 or 32)"""


def view_problem(view_width: int, view_height: int, width: int, height: int) -> str | None:
    """Why a ``view_width x view_height`` image cannot be a view of a ``width x height`` original, or None.

    A view is the whole original resized down: no side larger, and both sides scaled alike up to
    :data:`VIEW_ROUNDING` pixels of rounding (else it is another image, a crop, or rotated).

    >>> view_problem(1092, 728, 3000, 2000) is None
    True
    >>> view_problem(3200, 2000, 3000, 2000)
    'a view image larger than the original: 3200x2000 > 3000x2000 (a view is the original downsampled)'
    """
    if view_width > width or view_height > height:
        return (
            f"a view image larger than the original: {view_width}x{view_height} > {width}x{height} "
            "(a view is the original downsampled)"
        )
    scale_x, scale_y = view_width / width, view_height / height
    if abs(scale_x - scale_y) / max(scale_x, scale_y) > VIEW_ROUNDING / view_width + VIEW_ROUNDING / view_height:
        return (
            f"view image {view_width}x{view_height} is not the {width}x{height} original resized "
            "(its aspect differs; a view shows the whole original)"
        )
    return None


class RowProblem(ValueError):
    """One problem of one row: ``kind`` groups it in a validation report, the message is the one-line error."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def manifest_path(path: str | Path) -> Path:
    """The manifest file ``path`` names: the file itself, or ``manifest.jsonl`` inside a folder."""
    path = Path(path)
    if path.is_dir():
        if not (path / MANIFEST_NAME).is_file():
            raise UserError(f"{path} holds no {MANIFEST_NAME}; pass the manifest file itself")
        return path / MANIFEST_NAME
    if not path.is_file():
        raise UserError(f"manifest {path} does not exist")
    if path.suffix not in SUFFIXES:
        raise UserError(f"manifest {path} must be a .jsonl (or .parquet) file")
    return path


def is_manifest(path: str | Path) -> bool:
    """Whether ``path`` names a VQA manifest rather than a built cue-search dataset (a folder of split files).

    A ``.jsonl`` file, a ``.parquet`` file without the cue-search columns, or a folder holding ``manifest.jsonl``
    and no ``train.parquet``/``val.parquet``.
    """
    path = Path(path)
    if path.is_dir():
        splits = any(split_path(path, split).exists() for split in SPLITS)
        return (path / MANIFEST_NAME).is_file() and not splits
    if path.suffix == ".jsonl":
        return True
    if path.suffix == ".parquet" and path.is_file():
        import pyarrow.parquet as pq  # heavy: only a Parquet manifest needs it

        try:
            names = pq.read_schema(path).names
        except Exception:  # an unreadable file: the manifest reader names the problem
            return True
        if "problem" in names and "images" in names:
            raise UserError(f"{path} is a split of a cue-search dataset; pass its folder ({path.parent})")
        return True
    return False


def read_manifest(path: str | Path, progress: bool = False) -> list[VqaItem]:
    """Read and check a manifest; the first problem is a UserError naming the file, line and field."""
    path = manifest_path(path)
    items, seen = [], {}
    for where, row in tqdm(list(_raw_rows(path)), desc="read manifest", unit="row", disable=not progress):
        try:
            items.append(_check_row(row, where, path.parent, seen))
        except RowProblem as problem:
            raise UserError(f"{where}: {problem}") from None
    return items


def check_manifest(path: str | Path, decode: int = 0, progress: bool = True):
    """Check every row of a manifest and report every problem (``locus-data validate`` on a manifest).

    ``decode`` images (spread evenly; -1: all) are also fully decoded. Returns :class:`locus_data.validate.Report`.
    """
    from locus_data.validate import Report  # the validator's report, shared with cue-search datasets

    path = manifest_path(path)
    report = Report()
    try:
        rows = list(_raw_rows(path))
    except RowProblem as problem:
        report.add(problem.kind, str(problem))
        return report
    report.rows[path.name] = len(rows)
    if not rows:
        report.add("empty manifest", f"{path} has no rows")
    every = 1 if decode < 0 or decode >= len(rows) else max(1, len(rows) // decode) if decode else 0
    seen: dict[str, str] = {}
    for index, (where, row) in enumerate(tqdm(rows, desc="validate manifest", unit="row", disable=not progress)):
        try:
            item = _check_row(row, where, path.parent, seen)
        except RowProblem as problem:
            report.add(problem.kind, f"{where}: {problem}")
            continue
        if every and index % every == 0:
            for name, file in ((IMAGE, item.image), (VIEW_IMAGE, item.view_image)):
                if file is None:
                    continue
                try:
                    with open_image(file) as image:
                        image.load()
                    report.decoded += 1
                except (OSError, ValueError) as err:
                    report.add("image does not decode", f"{where}: {name}: {file}: {err}")
    return report


def write_manifest(path: str | Path, items: Iterable[VqaItem]) -> Path:
    """Write ``items`` as a JSONL manifest, atomically (a temporary file renamed into place); checks them first.

    Images inside the manifest's folder are written relative to it, so the folder can move.
    """
    path = Path(path)
    items = list(items)
    seen: dict[str, str] = {}
    lines = []
    for number, item in enumerate(items, 1):
        row = item.to_row(path.parent)
        try:
            _check_row(row, f"{path}:{number}", path.parent, seen)
        except RowProblem as problem:
            raise UserError(f"cannot write {path}: item {number}: {problem}") from None
        lines.append(json.dumps(row, ensure_ascii=False))
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    return path


def merge_manifests(
    paths: Iterable[str | Path], out: str | Path, overwrite: bool = False, equal: bool = False, seed: int = 0
) -> tuple[Path, int]:
    """Write the questions of several manifests, in order, into one (``locus-data merge-vqa``); ids must stay
    unique. Image paths are rewritten relative to ``out``'s folder where they lie inside it, else absolute, so
    manifests from different folders combine (a plain ``cat`` would break their relative paths).

    ``equal``: take as many questions from each manifest as the smallest holds (a seeded draw that keeps each
    manifest's order), e.g. Table 8's "Mix Data": Stage I's data and the boxed set 1:1."""
    out = Path(out)
    paths = list(paths)
    if out.suffix != ".jsonl":
        raise UserError(f"--out {out}: a manifest is a .jsonl file")
    # --overwrite replaces an earlier merge, never one of the manifests being merged
    check_output(out, [manifest_path(path) for path in paths])
    if out.exists() and not overwrite:
        raise UserError(f"{out} exists; pass --overwrite to replace it")
    sources = [manifest_path(path) for path in paths]
    chosen = {source: read_manifest(source) for source in sources}
    if equal:
        count = min(len(items) for items in chosen.values())
        rng = random.Random(seed)
        chosen = {
            source: [items[i] for i in sorted(rng.sample(range(len(items)), count))]
            for source, items in chosen.items()
        }
    items, origin = [], {}
    for source in sources:
        for item in chosen[source]:
            if item.id in origin:
                raise UserError(f"id {item.id!r} is in both {origin[item.id]} and {source}; ids must be unique")
            origin[item.id] = source
            items.append(item)
    if not items:
        raise UserError("the manifests have no rows")
    return write_manifest(out, items), len(items)


def _raw_rows(path: Path) -> Iterator[tuple[str, Any]]:
    """``(where, row)`` of every row: ``file:line`` (JSONL, lines from 1) or ``file:row N`` (Parquet, from 0)."""
    if path.suffix == ".parquet":
        import pyarrow as pa  # heavy: only a Parquet manifest needs it
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except (pa.ArrowException, OSError) as err:
            raise UserError(f"{path} is not a readable Parquet file ({err})") from None
        for index, row in enumerate(table.to_pylist()):
            yield f"{path}:row {index}", {k: v for k, v in row.items() if v is not None}
        return
    try:
        handle = path.open(encoding="utf-8")
    except OSError as err:
        raise UserError(f"cannot read manifest {path}: {err}") from None
    with handle:
        try:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except (ValueError, RecursionError):
                    row = None
                if not isinstance(row, dict):
                    row = RowProblem("not a JSON object", f"not a JSON object: {line.strip()[:60]!r}")
                yield f"{path}:{number}", row
        except UnicodeDecodeError:
            raise UserError(f"{path} is not UTF-8 text; a manifest is JSON lines") from None


def _check_row(row: Any, where: str, root: Path, seen: dict[str, str]) -> VqaItem:
    if isinstance(row, RowProblem):  # a line that is not a JSON object, reported where it is
        raise row
    if not isinstance(row, dict):
        raise RowProblem("not a JSON object", f"not a JSON object: {str(row)[:60]!r}")
    for key in row:
        if key not in KNOWN_FIELDS:
            close = difflib.get_close_matches(str(key), KNOWN_FIELDS, n=1, cutoff=0.8)
            if close:
                raise RowProblem("unknown field", f"{key}: unknown field; did you mean {close[0]!r}?")
    for name in REQUIRED_FIELDS:
        value = row.get(name)
        if value is None:
            raise RowProblem(f"missing {name}", f"{name}: missing (every row needs {', '.join(REQUIRED_FIELDS)})")
        if not isinstance(value, str) or not value.strip():
            raise RowProblem(f"bad {name}", f"{name}: must be a non-empty string, got {value!r}")
    key = row[ID]
    if key in seen:
        raise RowProblem("duplicate id", f"{ID}: {key!r} repeats the id of {seen[key]}")
    seen[key] = where
    try:
        lfpc_ground_truth.check_choices(row.get(CHOICES))
    except ValueError as err:
        raise RowProblem("bad choices", f"{CHOICES}: {err}") from None
    try:
        answer, choices = lfpc_ground_truth.check_answer(row[ANSWER], row.get(CHOICES))
    except ValueError as err:
        raise RowProblem("answer not a choice letter", f"{ANSWER}: {err}") from None
    image = Path(row[IMAGE]) if Path(row[IMAGE]).is_absolute() else root / row[IMAGE]
    if not image.is_file():
        raise RowProblem("missing image", f"{IMAGE}: {image} does not exist")
    try:
        with open_image(image) as opened:
            width, height = opened.size
    except (OSError, ValueError) as err:
        raise RowProblem("unreadable image", f"{IMAGE}: {image} is not a readable image ({err})") from None
    try:
        boxes = lfpc_ground_truth.check_boxes(row.get(BOXES) or [], width, height)
    except ValueError as err:
        message = str(err)
        kind = (
            "boxes not nested"
            if "nested" in message
            else "boxes outside the image"
            if "inside" in message
            else "bad boxes"
        )
        raise RowProblem(kind, f"{BOXES}: {message}") from None
    view, view_size = _check_view(row.get(VIEW_IMAGE), root, width, height)
    extra = {k: v for k, v in row.items() if k not in (*REQUIRED_FIELDS, CHOICES, BOXES)}
    return VqaItem(
        key, image.absolute(), row[QUESTION], answer, width, height, choices, boxes, extra, view, *view_size
    )


def _check_view(value: Any, root: Path, width: int, height: int) -> tuple[Path | None, tuple[int | None, ...]]:
    """The row's view image (absolute path, size), checked against the original's size; (None, (None, None))."""
    if value is None:
        return None, (None, None)
    if not isinstance(value, str) or not value.strip():
        raise RowProblem("bad view_image", f"{VIEW_IMAGE}: must be a non-empty path string, got {value!r}")
    view = Path(value) if Path(value).is_absolute() else root / value
    if not view.is_file():
        raise RowProblem("missing view image", f"{VIEW_IMAGE}: {view} does not exist")
    try:
        with open_image(view) as opened:
            size = opened.size
    except (OSError, ValueError) as err:
        raise RowProblem("unreadable view image", f"{VIEW_IMAGE}: {view} is not a readable image ({err})") from None
    problem = view_problem(*size, width, height)
    if problem is not None:
        kind = "view image larger than the original" if "larger" in problem else "view image not the original"
        raise RowProblem(kind, f"{VIEW_IMAGE}: {problem}")
    return view.absolute(), size


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def _plain(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)
