"""``locus-data export-lfpc``: a VQA manifest -> the EasyR1 ``train.parquet`` / ``val.parquet`` LFPC trains on.

The row layout (one home: :mod:`locus_data.lfpc_schema`): ``problem`` = ``<image>`` + the question text,
``images`` = ONE ``{"bytes": <view image file>, "path": "<absolute path of the original>"}``, ``answer`` = the LFPC
ground-truth JSON with the view's size, plus metadata.

Which image a row shows (``view``):

* ``selected`` (default): the manifest row's ``view_image`` -- the version resolution selection picked (Stage I's
  information gap) -- where the row has one, else the original. Without any ``view_image`` the export says so: the
  model is then shown every original, and Stage I has no information gap.
* ``original``: always the original, even where a ``view_image`` exists. Whether Stage II's grounding data also
  goes through resolution selection is open in the paper; LOCUS's default is no (Stage II trains where to crop:
  its boxed manifest is exported as is, or with ``--view original`` when selection has been run on it).

Splits are deterministic: ``--val N`` draws whole original images (all questions about one image stay on one
side, so a validation question never asks about a training image) in an order seeded by ``--seed`` until N
questions are in val -- a few more when an image carries several questions. ``--val-manifest M`` takes val from a
second manifest instead (e.g. VisualProbe's val sets); the two must share no id and no image. Every file is written
to a temporary name and renamed into place when complete (``export.json`` last), so a killed export leaves the
previous export or none, never a half-written one.
"""

import json
import os
import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from locus_data import lfpc_schema as ls
from locus_data.config import SPLITS, split_path
from locus_data.errors import UserError
from locus_data.images import open_image
from locus_data.outputs import atomic_write_text
from locus_data.problems import IMAGE_MARKER
from locus_data.schema import ANSWER, IMAGES, PROBLEM
from locus_data.validate import Report
from locus_data.vqa import SELECTION, VqaItem, manifest_path, read_manifest, view_problem
from locus_reward import lfpc_ground_truth
from locus_reward.answers import question_prompt


ROW_GROUP = 32
"""rows per Parquet row group at most: a group holds its view images in memory while written and read"""
ROW_GROUP_BYTES = 16 << 20
"""and at most about this many bytes of view images: the writer's peak memory is a few times a group's bytes"""
MAX_DEFAULT_VAL = 64


def default_val(num_questions: int) -> int:
    """Validation questions when ``--val`` is not given: 10% of the manifest, at least 1, at most 64.

    >>> default_val(50), default_val(5000), default_val(2)
    (5, 64, 1)
    """
    return max(1, min(MAX_DEFAULT_VAL, num_questions // 10))


def split_by_image(items: Sequence[VqaItem], num_val: int, seed: int) -> tuple[list[VqaItem], list[VqaItem]]:
    """``(train, val)``: whole images drawn in a ``seed``-shuffled order of their paths until ``num_val`` questions
    are in val; both keep the manifest's order. Depends on the manifest's contents and the seed, not its order."""
    groups: dict[str, list[int]] = {}
    for index, item in enumerate(items):
        groups.setdefault(str(item.image), []).append(index)
    keys = sorted(groups)
    random.Random(seed).shuffle(keys)
    val: set[int] = set()
    for key in keys:
        if len(val) >= num_val:
            break
        val.update(groups[key])
    if len(val) == len(items):
        raise UserError(
            f"--val {num_val} leaves no training question ({len(items)} questions on {len(keys)} images); "
            "ask for fewer validation questions"
        )
    return [it for i, it in enumerate(items) if i not in val], [it for i, it in enumerate(items) if i in val]


def export_row(item: VqaItem, split: str, view: str) -> dict[str, Any]:
    """One export row of ``item``: the view's bytes read from its file, the original's absolute path beside them."""
    if IMAGE_MARKER in item.question:
        raise UserError(f"{item.id}: the question holds an {IMAGE_MARKER} marker; the export adds the only one")
    selected = view == ls.VIEW_SELECTED and item.view_image is not None
    image = item.view_image if selected else item.image
    width, height = (item.view_width, item.view_height) if selected else (item.width, item.height)
    try:
        data = image.read_bytes()
    except OSError as err:
        raise UserError(f"{item.id}: cannot read {image}: {err}") from None
    selection = item.extra.get(SELECTION)
    return {
        PROBLEM: IMAGE_MARKER + question_prompt(item.question, item.choices),
        IMAGES: [{"bytes": data, "path": str(item.image.resolve())}],
        ANSWER: item.ground_truth(width, height),
        ls.ID: item.id,
        ls.SPLIT: split,
        ls.VIEW: ls.VIEW_SELECTED if selected else ls.VIEW_ORIGINAL,
        ls.ORIGINAL_WIDTH: item.width,
        ls.ORIGINAL_HEIGHT: item.height,
        ls.VIEW_WIDTH: width,
        ls.VIEW_HEIGHT: height,
        ls.VIEW_SCALE: width / item.width,
        ls.NUM_BOXES: len(item.boxes),
        ls.SELECTION: None if selection is None else json.dumps(selection, ensure_ascii=False),
    }


def export_lfpc(
    manifest: str | Path,
    out: str | Path,
    *,
    val: int | None = None,
    val_manifest: str | Path | None = None,
    view: str = ls.VIEW_SELECTED,
    seed: int = 0,
    require_boxes: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Write ``out/train.parquet``, ``out/val.parquet`` and ``out/export.json``; returns what export.json holds.

    ``require_boxes`` (Stage II): every question must carry nested boxes, else a one-line error before writing.
    """
    if view not in ls.VIEWS:
        raise UserError(f"--view must be one of {', '.join(ls.VIEWS)}, got {view!r}")
    if val is not None and val_manifest is not None:
        raise UserError("give --val N or --val-manifest M, not both")
    if val is not None and val < 1:
        raise UserError(f"--val must be >= 1 (EasyR1 builds a validation loader from val.parquet), got {val}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; pass a folder")
    ours = [split_path(out, split) for split in SPLITS] + [out / ls.EXPORT_INFO]
    if not overwrite and any(path.exists() for path in ours):
        raise UserError(f"{out} already holds an export; pass --overwrite to replace it")
    source = manifest_path(manifest)
    items = read_manifest(source, progress=progress)
    if not items:
        raise UserError(f"{source} has no rows")
    if val_manifest is not None:
        val_source = manifest_path(val_manifest)
        train, held = items, read_manifest(val_source, progress=progress)
        if not held:
            raise UserError(f"{val_source} has no rows")
        _check_disjoint(train, held, source, val_source)
        num_val = len(held)
    else:
        val_source = None
        num_val = default_val(len(items)) if val is None else val
        train, held = split_by_image(items, num_val, seed)
    splits = {"train": train, "val": held}
    unboxed = [it.id for it in train + held if not it.boxes]
    if require_boxes and unboxed:
        raise UserError(
            f"--require-boxes: {len(unboxed)} questions have no boxes, e.g. {unboxed[0]!r}; Stage II scores crops "
            "against nested boxes (add them with locus-data add-boxes)"
        )
    out.mkdir(parents=True, exist_ok=True)
    temporary = {split: out / f".{split}.parquet.tmp" for split in splits}
    try:
        bar = tqdm(total=len(train) + len(held), desc="export-lfpc", unit="row", disable=not progress)
        for split, rows in splits.items():
            _write_split(temporary[split], (export_row(item, split, view) for item in rows), bar)
        bar.close()
        for split, path in temporary.items():
            os.replace(path, split_path(out, split))
    finally:
        for path in temporary.values():
            path.unlink(missing_ok=True)
    shows_view = lambda it: view == ls.VIEW_SELECTED and it.view_image is not None  # noqa: E731
    info = {
        "manifest": str(source.resolve()),
        "val_manifest": None if val_source is None else str(val_source.resolve()),
        "view": view,
        "seed": seed,
        "require_boxes": require_boxes,
        "val_requested": None if val_source is not None else num_val,
        "rows": {split: len(rows) for split, rows in splits.items()},
        "selected_views": {split: sum(map(shows_view, rows)) for split, rows in splits.items()},
        "with_boxes": {split: sum(bool(it.boxes) for it in rows) for split, rows in splits.items()},
        "with_choices": {split: sum(it.choices is not None for it in rows) for split, rows in splits.items()},
    }
    atomic_write_text(out / ls.EXPORT_INFO, json.dumps(info, indent=2) + "\n")
    return info


def _check_disjoint(train: list[VqaItem], val: list[VqaItem], source: Path, val_source: Path) -> None:
    ids = {it.id for it in train} & {it.id for it in val}
    if ids:
        raise UserError(f"{source} and {val_source} share {len(ids)} ids, e.g. {sorted(ids)[:3]}; ids must be unique")
    images = {it.image.resolve() for it in train} & {it.image.resolve() for it in val}
    if images:
        raise UserError(
            f"{source} and {val_source} share {len(images)} images, e.g. {sorted(map(str, images))[:2]}; "
            "a validation question about a training image measures memory"
        )


def _write_split(path: Path, rows: Iterator[dict[str, Any]], bar: tqdm) -> None:
    # no Hugging Face feature metadata: `datasets` must hand EasyR1 the struct (path included), not a PIL image;
    # no compression: image files do not compress further and the metadata columns are tiny (as locus-data build)
    with pq.ParquetWriter(path, ls.SCHEMA, compression="none") as writer:
        group: list[dict[str, Any]] = []
        size = 0
        for row in rows:
            group.append(row)
            size += len(row[IMAGES][0]["bytes"])
            if len(group) == ROW_GROUP or size >= ROW_GROUP_BYTES:
                writer.write_table(pa.Table.from_pylist(group, schema=ls.SCHEMA))
                bar.update(len(group))
                group, size = [], 0
        if group:
            writer.write_table(pa.Table.from_pylist(group, schema=ls.SCHEMA))
            bar.update(len(group))


def is_export(path: str | Path) -> bool:
    """Whether ``path`` is a folder holding an LFPC export (rather than a cue-search dataset)."""
    path = Path(path)
    if not path.is_dir():
        return False
    if (path / ls.EXPORT_INFO).is_file():
        return True
    for split in SPLITS:
        file = split_path(path, split)
        if file.is_file():
            try:
                names = set(pq.read_schema(file).names)
            except (pa.ArrowException, OSError):
                return False
            return {ls.ID, ls.VIEW, ls.VIEW_WIDTH} <= names
    return False


def check_export(out: str | Path, decode: int = 64, progress: bool = True) -> Report:
    """Check an LFPC export (``locus-data validate DIR``); every problem reported, grouped by kind.

    Every row: one ``<image>`` marker; one image struct whose ``bytes`` open and whose ``path`` is an existing
    original (absolute); a ground truth that parses, whose original size is that file's and whose view size is the
    stored view's; a view no larger than the original, of its aspect; ids unique. Across splits: train not empty,
    val not empty, no image on both sides. ``decode`` views per split (spread evenly; -1: all) are fully decoded.
    """
    out = Path(out)
    report = Report()
    originals: dict[str, tuple[int, int] | None] = {}  # header sizes, read once per original
    ids: dict[str, str] = {}
    images: dict[str, set[str]] = {}
    expected = {f.name: f.type for f in ls.SCHEMA}
    for split in SPLITS:
        path = split_path(out, split)
        parquet = report.open_split(path, "; run locus-data export-lfpc")
        if parquet is None:
            continue
        schema = parquet.schema_arrow
        wrong = [
            f"{name}: {schema.field(name).type if name in schema.names else 'missing'}"
            for name, type_ in expected.items()
            if name not in schema.names or not _compatible(schema.field(name).type, type_)
        ]
        if wrong:
            report.add("columns", f"{path}: {', '.join(wrong)}")
            continue
        total = parquet.metadata.num_rows
        report.rows[split] = total
        if total == 0:
            report.add("empty split", f"{path} has no rows; EasyR1 needs both splits")
        every = 1 if decode < 0 or decode >= total else max(1, total // decode) if decode else 0
        images[split] = set()
        index = 0
        bar = tqdm(total=total, desc=f"validate {split}", unit="row", disable=not progress)
        try:
            for batch in parquet.iter_batches(batch_size=ROW_GROUP):
                for row in batch.to_pylist():
                    where = f"{split} row {index}"
                    decoded = bool(every) and index % every == 0
                    report.decoded += decoded
                    _check_row(row, where, decoded, report, originals, ids, images[split])
                    index += 1
                bar.update(batch.num_rows)
        except (pa.ArrowException, OSError) as err:
            report.add("unreadable split file", f"{path}: {err}")
        bar.close()
    if all(split in images for split in SPLITS):
        shared = set.intersection(*(images[split] for split in SPLITS))
        if shared:
            report.add("train and val share images", f"{len(shared)} originals, e.g. {sorted(shared)[:2]}")
    return report


def _compatible(actual: pa.DataType, expected: pa.DataType) -> bool:
    # other writers (datasets, pandas) may store strings and binaries as their large variants
    large = {pa.string(): pa.large_string(), pa.binary(): pa.large_binary()}
    if actual == expected or actual == large.get(expected):
        return True
    if pa.types.is_list(expected) and (pa.types.is_list(actual) or pa.types.is_large_list(actual)):
        return _compatible(actual.value_type, expected.value_type)
    if pa.types.is_struct(expected) and pa.types.is_struct(actual):
        fields = {actual.field(i).name: actual.field(i).type for i in range(actual.num_fields)}
        return all(
            expected.field(i).name in fields and _compatible(fields[expected.field(i).name], expected.field(i).type)
            for i in range(expected.num_fields)
        )
    return False


def _check_row(
    row: dict[str, Any],
    where: str,
    decode: bool,
    report: Report,
    originals: dict[str, tuple[int, int] | None],
    ids: dict[str, str],
    images: set[str],
) -> None:
    key = row.get(ls.ID)
    if key in ids:
        report.add("duplicate id", f"{where}: {key!r} repeats {ids[key]}")
    ids[key] = where
    problem = row.get(PROBLEM)
    if not isinstance(problem, str) or problem.count(IMAGE_MARKER) != 1:
        count = problem.count(IMAGE_MARKER) if isinstance(problem, str) else "no"
        report.add("problem must hold exactly one <image> marker", f"{where}: {count} markers")
    entries = row.get(IMAGES)
    if not isinstance(entries, list) or len(entries) != 1:
        report.add("images must be a list of exactly one view", f"{where}: {len(entries) if entries else 0} images")
        return
    entry = entries[0] or {}
    try:
        gt = lfpc_ground_truth.loads(row.get(ANSWER))
    except ValueError as err:
        report.add("answer does not parse", f"{where}: {err}")
        gt = None
    try:
        view = open_image(entry)  # EasyR1's way: the struct's bytes, never its path
        if decode:
            view.load()
    except Exception as err:  # any failure to open is the finding itself
        report.add("view image cannot be opened", f"{where}: {type(err).__name__}: {err}")
        view = None
    original = entry.get("path")
    if not isinstance(original, str) or not original or not Path(original).is_absolute():
        report.add("view struct path must be the original's absolute path", f"{where}: path={original!r}")
        return
    images.add(original)
    if original not in originals:
        try:
            with open_image(original) as opened:
                originals[original] = opened.size
        except (OSError, ValueError):
            originals[original] = None
    size = originals[original]
    if size is None:
        report.add("original image missing or unreadable", f"{where}: {original}")
        return
    if view is not None:
        problem_text = view_problem(view.width, view.height, *size)
        if problem_text is not None:
            kind = "view image larger than the original" if "larger" in problem_text else "view image not the original"
            report.add(kind, f"{where}: {problem_text}")
    if gt is None:
        return
    if (gt.width, gt.height) != size:
        report.add("answer width/height differ from the original", f"{where}: {(gt.width, gt.height)} vs {size}")
    if view is not None and (gt.view_width, gt.view_height) != view.size:
        report.add(
            "answer view_width/view_height differ from the stored view",
            f"{where}: {(gt.view_width, gt.view_height)} vs {view.size}",
        )
