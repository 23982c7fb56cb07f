"""What every benchmark loader returns: :class:`Item` questions in a :class:`Loaded` benchmark, and the readers the
loaders share (jsonl lines, required fields, COCO boxes)."""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from locus_data.errors import UserError


@dataclass
class Item:
    """One benchmark question on one image."""

    index: int
    """position in the loaded benchmark; predictions refer to it"""
    image: Any
    """path, or encoded image bytes"""
    question: str
    """question text (MCQ) or referring expression (grounding)"""
    options: list[str] = field(default_factory=list)
    """MCQ options in the order shown to the model"""
    answer: str | None = None
    """correct option letter (MCQ)"""
    category: str = ""
    """benchmark sub-task, reported separately"""
    cycle: str = ""
    """HR-Bench cycle; accuracy is averaged over cycles"""
    boxes: list[list[float]] = field(default_factory=list)
    """GT boxes ``[x1, y1, x2, y2]`` in pixels of the image file (grounding target, suppression, AIB)"""
    name: str = ""
    """file stem or id, for reading predictions by eye"""
    object_id: str = ""
    """RefCOCO: the referred object (several expressions share it)"""


@dataclass
class Loaded:
    """A benchmark's items and the protocol that reading them implies (saved in metrics.json and table.md)."""

    items: list[Item]
    """questions in file order"""
    protocol: dict[str, Any]
    """layout read, what one sample is, option order, split and counts"""


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Objects of a jsonl file; a broken line is a one-line error naming the file and the line."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as err:
            raise UserError(f"{path}:{number}: not a JSON line ({err}); fix or remove that line") from err
        if not isinstance(row, dict):
            raise UserError(f"{path}:{number}: expected a JSON object per line, got {type(row).__name__}")
        rows.append(row)
    return rows


def require_field(row: dict[str, Any], key: str, path: Path, where: str) -> Any:
    """``row[key]``; a one-line error naming the file, the line and the fields there are when it is missing."""
    if key not in row:
        raise UserError(f"{path}:{where}: no {key!r} field (has {', '.join(sorted(row)) or 'none'})")
    return row[key]


def xywh_to_xyxy(box: list[float]) -> list[float]:
    """COCO ``[x, y, w, h]`` to corners.

    >>> xywh_to_xyxy([10, 20, 30, 40])
    [10.0, 20.0, 40.0, 60.0]
    """
    x, y, w, h = (float(v) for v in box)
    return [x, y, x + w, y + h]
