"""Read a COCO-format detection file into the cue candidates each image offers.

The file is parsed with ``json`` and its annotations grouped per image (as pycocotools' ``COCO.createIndex`` groups
them, without its import of numpy, which would delay the build's first decode), after a structural check that turns
a malformed file into one message naming the entry at fault, instead of a bare KeyError later. LVIS-style
files (no ``iscrowd``, ``coco_url`` instead of ``file_name``) are accepted too.

Per annotation, in this order: crowd (``iscrowd=1``) and degenerate boxes (non-finite, w or h <= 0) are never used;
the box is clamped to the image, and dropped when nothing is left or when a side of what is left is below
``min_crop_size`` (skipped, not enlarged: an enlarged window would show mostly context, not the object); the size bin
is the clamped box area over the image area. Every dropped annotation is counted by reason, and every kept one whose
box reached beyond the image is counted as ``clamped`` (COCO boxes often overrun the border by a fraction of a pixel:
skipping them would drop valid objects; the cue is cut from the visible part, which is also the ground truth, so the
pair stays consistent).
"""

import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from locus_data.config import SIZE_BINS, DataConfig
from locus_data.crops import Box
from locus_data.errors import UserError


NUMBER_TYPES = {int, float}  # exact types: a JSON true is not a coordinate


@dataclass(frozen=True)
class Candidate:
    """One annotation usable as a cue."""

    ann_id: int
    category_id: int
    box: Box
    """object box clamped to the image, x1, y1, x2, y2 in source pixels"""
    area_ratio: float
    size_bin: str


@dataclass(frozen=True)
class SourceImage:
    """One image of the annotation file with the candidates it offers."""

    image_id: int
    file_name: str
    width: int
    height: int
    candidates: tuple[Candidate, ...]


@dataclass
class CocoIndex:
    images: list[SourceImage]
    """images with at least one candidate, in annotation-file order"""
    skipped: Counter
    """dropped annotations and images, by reason"""
    num_images: int
    num_annotations: int
    clamped: int = 0
    """kept annotations whose box reached beyond the image and was clamped to it"""


def load_annotations(path: str | Path) -> dict:
    """Parse and structurally check a COCO-format detection file; raises UserError naming the problem."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"annotation file not found: {path}")
    try:
        # text mode: the file is decoded in chunks rather than held as bytes and str at once
        with open(path, encoding="utf-8") as f:
            data = json.load(f, object_hook=_without_segmentation)
    except json.JSONDecodeError as err:
        raise UserError(f"annotation file {path} is not valid JSON: {err}") from None
    except UnicodeDecodeError as err:
        raise UserError(f"annotation file {path} is not UTF-8 JSON: {err}") from None
    _check_structure(data, path)
    return data


def _without_segmentation(obj: dict) -> dict:
    # polygons are most of a COCO file and no cue uses them: dropping each as soon as its annotation is parsed
    # roughly halves the peak memory of indexing instances_train2014.json (measured in the README)
    obj.pop("segmentation", None)
    return obj


def _check_structure(data: object, path: Path) -> None:
    def bad(message: str) -> None:
        raise UserError(f"malformed annotation file {path}: {message}")

    if not isinstance(data, dict):
        bad(f"top level must be an object with 'images' and 'annotations', got {type(data).__name__}")
    for key in ("images", "annotations"):
        if not isinstance(data.get(key), list):
            bad(f"missing '{key}' list")
    image_ids: set[int] = set()
    for i, img in enumerate(data["images"]):
        if not isinstance(img, dict):
            bad(f"images[{i}] is not an object")
        for key in ("id", "width", "height"):
            if not _is_int(img.get(key)):
                bad(f"images[{i}] has no integer '{key}'")
        if img["width"] <= 0 or img["height"] <= 0:
            bad(f"images[{i}] (id {img['id']}) has size {img['width']}x{img['height']}")
        if not isinstance(img.get("file_name"), str) and not isinstance(img.get("coco_url"), str):
            bad(f"images[{i}] (id {img['id']}) has no 'file_name'")
        if img["id"] in image_ids:
            bad(f"images[{i}] repeats image id {img['id']}")
        image_ids.add(img["id"])
    ann_ids: set[int] = set()
    for i, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict):
            bad(f"annotations[{i}] is not an object")
        for key in ("id", "image_id"):
            if not _is_int(ann.get(key)):
                bad(f"annotations[{i}] has no integer '{key}'")
        if not isinstance(ann.get("bbox"), list) or len(ann["bbox"]) != 4:
            bad(f"annotations[{i}] (id {ann['id']}) has no 'bbox' of 4 numbers")
        if ann["image_id"] not in image_ids:
            bad(f"annotations[{i}] (id {ann['id']}) refers to image_id {ann['image_id']}, which is not in 'images'")
        if ann["id"] in ann_ids:
            bad(f"annotations[{i}] repeats annotation id {ann['id']}")
        ann_ids.add(ann["id"])


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def file_name_of(img: dict) -> str:
    # LVIS lists images by URL only; the file in the image folder has the URL's last component as its name
    return img["file_name"] if isinstance(img.get("file_name"), str) else img["coco_url"].rsplit("/", 1)[-1]


def bin_of(area_ratio: float, cfg: DataConfig) -> str | None:
    for size_bin in SIZE_BINS:
        lo, hi = cfg.bin_range(size_bin)
        if lo <= area_ratio < hi:
            return size_bin
    return None


def eligible_box(bbox: list, width: int, height: int, min_size: int) -> tuple[Box | None, str | None]:
    """Clamp a COCO ``[x, y, w, h]`` box to the image; returns (box, None) or (None, reason it is not usable).

    >>> eligible_box([600, 10, 80, 30], 640, 480, 16)
    ((600.0, 10.0, 640.0, 40.0), None)
    >>> eligible_box([630, 10, 80, 30], 640, 480, 16)
    (None, 'below_min_size')
    >>> eligible_box([10, 10, 0, 30], 640, 480, 16)
    (None, 'degenerate_box')
    """
    if not {type(v) for v in bbox} <= NUMBER_TYPES:
        return None, "degenerate_box"
    x, y, w, h = float(bbox[0]), float(bbox[1]), float(bbox[2]), float(bbox[3])
    if not (w > 0 and h > 0 and math.isfinite(x + y + w + h)):  # also false for NaN
        return None, "degenerate_box"
    x1, y1, x2, y2 = max(x, 0.0), max(y, 0.0), min(x + w, float(width)), min(y + h, float(height))
    if x2 <= x1 or y2 <= y1:
        return None, "outside_image"
    if x2 - x1 < min_size or y2 - y1 < min_size:
        return None, "below_min_size"
    return (x1, y1, x2, y2), None


def build_index(path: str | Path, cfg: DataConfig) -> CocoIndex:
    """Load ``path`` and list, per image, the annotations usable as cues under ``cfg``."""
    data = load_annotations(path)
    image_anns: dict[int, list[dict]] = {}  # per image id, its annotations in file order
    for ann in data["annotations"]:
        image_anns.setdefault(ann["image_id"], []).append(ann)
    skipped: Counter = Counter()
    clamped = 0
    images: list[SourceImage] = []
    for img in data["images"]:
        image_id, width, height = img["id"], img["width"], img["height"]
        candidates = []
        for ann in image_anns.get(image_id, []):
            if ann.get("iscrowd", 0):
                skipped["crowd"] += 1
                continue
            box, reason = eligible_box(ann["bbox"], width, height, cfg.min_crop_size)
            if box is None:
                skipped[reason] += 1
                continue
            area_ratio = (box[2] - box[0]) * (box[3] - box[1]) / (width * height)
            size_bin = bin_of(area_ratio, cfg)
            if size_bin is None:
                skipped["outside_size_bins"] += 1
                continue
            x, y, w, h = (float(v) for v in ann["bbox"])
            clamped += box != (x, y, x + w, y + h)
            category = ann.get("category_id", -1)
            candidates.append(Candidate(ann["id"], category if _is_int(category) else -1, box, area_ratio, size_bin))
        if not candidates:
            skipped["no_eligible_object"] += 1
            continue
        images.append(SourceImage(image_id, file_name_of(img), width, height, tuple(candidates)))
    return CocoIndex(images, skipped, len(data["images"]), len(data["annotations"]), clamped)
