"""``locus-data add-boxes``: nested GT boxes from an annotation file into a VQA manifest (LFPC's Stage II data).

LFPC's Stage II boxes (``B_1 ⊂ ... ⊂ B_K``, from the minimal region that answers the question to its context) are
the paper's own unreleased annotation of 256 VisualProbe questions; this is the path to make them. Annotate in any
tool, then write one JSON object per line::

    {"id": "visualprobe-7", "boxes": [[1040, 610, 1090, 650], [980, 560, 1160, 720]]}

``boxes`` are ``[x1, y1, x2, y2]`` in pixels of the ORIGINAL image (the manifest's ``image``), in any order: they
are sorted smallest first by area here, so an annotator never has to get the order right, and then checked like
every manifest row -- inside the image, each inside the next (:func:`locus_reward.lfpc_ground_truth.check_boxes`)
-- with one-line errors naming the annotation file's line. ``locus-data preview`` draws the result (smallest in
red, then orange, yellow, ...) next to the smallest box cut from the original, for the annotator to check.
"""

import dataclasses
import json
from pathlib import Path

from locus_data.errors import UserError
from locus_data.outputs import check_output
from locus_data.vqa import BOXES, ID, VqaItem, manifest_path, read_manifest, write_manifest
from locus_reward import lfpc_ground_truth


def read_box_file(path: str | Path) -> dict[str, tuple[int, list[list[float]]]]:
    """``{id: (line number, boxes sorted smallest first)}`` of an annotation file; shape errors name the line."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"cannot read box annotations {path}: {err}") from None
    found: dict[str, tuple[int, list[list[float]]]] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):
            row = None
        if not isinstance(row, dict) or not isinstance(row.get(ID), str) or BOXES not in row:
            raise UserError(f'{path}:{number}: expected {{"id": ..., "boxes": [[x1, y1, x2, y2], ...]}}')
        key, boxes = row[ID], row[BOXES]
        if key in found:
            raise UserError(f"{path}:{number}: id {key!r} repeats line {found[key][0]}")
        if not isinstance(boxes, list) or not boxes:
            raise UserError(f"{path}:{number}: boxes: expected a non-empty list of [x1, y1, x2, y2], got {boxes!r}")
        for k, box in enumerate(boxes):
            try:  # one box at a time: its shape and numbers (the image and the nesting are checked after sorting)
                lfpc_ground_truth.check_boxes([box], float("inf"), float("inf"))
            except ValueError:
                shape = "[x1, y1, x2, y2] with x1 < x2, y1 < y2"
                raise UserError(f"{path}:{number}: box {k}: expected {shape}, got {box!r}") from None
        found[key] = number, sorted(boxes, key=lambda b: ((b[2] - b[0]) * (b[3] - b[1]), b[2] - b[0]))
    return found


def add_boxes(
    manifest: str | Path, box_file: str | Path, out: str | Path, *, keep_unboxed: bool = False, overwrite: bool = False
) -> tuple[Path, int, int]:
    """Write ``out``: ``manifest`` with the annotated boxes set (replacing any there); rows without annotation are
    dropped unless ``keep_unboxed``. Returns ``(path, rows with boxes, rows written)``."""
    out = Path(out)
    source = manifest_path(manifest)
    check_output(out, [source, box_file])  # --overwrite replaces an earlier output, never an input
    if out.exists() and not overwrite:
        raise UserError(f"{out} exists; pass --overwrite to replace it")
    if out.suffix != ".jsonl":
        raise UserError(f"--out {out}: a manifest is a .jsonl file")
    items = read_manifest(source)
    annotations = read_box_file(box_file)
    unknown = sorted(set(annotations) - {item.id for item in items})
    if unknown:
        line = annotations[unknown[0]][0]
        raise UserError(f"{box_file}:{line}: id {unknown[0]!r} is not in {source} ({len(unknown)} unknown ids)")
    written: list[VqaItem] = []
    for item in items:
        if item.id not in annotations:
            if keep_unboxed:
                written.append(item)
            continue
        line, boxes = annotations[item.id]
        try:
            checked = lfpc_ground_truth.check_boxes(boxes, item.width, item.height)
        except ValueError as err:
            raise UserError(f"{box_file}:{line}: boxes of {item.id!r} ({item.width}x{item.height}): {err}") from None
        written.append(dataclasses.replace(item, boxes=checked))
    if not written:
        raise UserError(f"no row of {source} is annotated in {box_file}")
    write_manifest(out, written)
    return out, len(annotations), len(written)
