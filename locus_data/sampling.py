"""Seeded choices made from annotations alone, before any pixel is read.

Every choice is a function of ``(seed, image_id[, ann_id])`` through a keyed hash, never of a shared random stream,
so it does not depend on file order, worker count or which other images failed to decode:

* image order: images sorted by ``hash(seed, image_id)``; the builder walks them in this order;
* candidates of an image: per size bin, its annotations sorted by ``hash(seed, image_id, ann_id)``, first
  ``max_cues_per_image`` kept;
* per-cue draws (padding fractions, scale, random-crop placement): a ``random.Random`` seeded with
  ``hash(seed, image_id, ann_id)``.

>>> key(0, 42) == key(0, 42), key(0, 42) == key(1, 42)
(True, False)
"""

import hashlib
import math
import random
import struct

from locus_data.coco_index import Box, Candidate, SourceImage
from locus_data.config import SPLITS, DataConfig
from locus_data.crops import CueSpec


def key(*values: int) -> int:
    """A 64-bit keyed hash of integers (stable across runs, platforms and Python versions)."""
    packed = b"".join(struct.pack("<q", v) if -(2**63) <= v < 2**63 else str(v).encode() for v in values)
    return int.from_bytes(hashlib.blake2b(packed, digest_size=8, person=b"locus-data").digest(), "little")


def image_order(images: list[SourceImage], seed: int) -> list[SourceImage]:
    return sorted(images, key=lambda img: (key(seed, img.image_id), img.image_id))


def plan_cues(img: SourceImage, cfg: DataConfig) -> tuple[CueSpec, ...]:
    """The cues this image may contribute, grouped by bin in the builder's preference order."""
    wanted = {b for split in SPLITS for b, n in cfg.bin_counts(split).items() if n > 0}
    by_bin: dict[str, list[Candidate]] = {}
    for cand in img.candidates:
        if cand.size_bin in wanted:
            by_bin.setdefault(cand.size_bin, []).append(cand)
    specs = []
    for size_bin in sorted(by_bin):
        chosen = sorted(by_bin[size_bin], key=lambda c: (key(cfg.seed, img.image_id, c.ann_id), c.ann_id))
        specs.extend(cue_spec(img, cand, cfg) for cand in chosen[: cfg.max_cues_per_image])
    return tuple(specs)


def cue_spec(img: SourceImage, cand: Candidate, cfg: DataConfig) -> CueSpec:
    rng = random.Random(key(cfg.seed, img.image_id, cand.ann_id, 1))
    # always draw in the same order, so a config that turns augmentation off leaves placement draws unchanged
    pads = [rng.uniform(*cfg.pad_range) for _ in range(4)]
    scale = rng.uniform(*cfg.scale_range)
    place_u, place_v = rng.random(), rng.random()
    x1, y1, x2, y2 = cand.box
    if cfg.cue_source == "random":
        w, h = x2 - x1, y2 - y1
        x1, y1 = place_u * (img.width - w), place_v * (img.height - h)
        x2, y2 = x1 + w, y1 + h
    augment = cand.size_bin in cfg.augment_bins
    if not augment:
        pads, scale = [0.0, 0.0, 0.0, 0.0], 1.0
    window = pad_window((x1, y1, x2, y2), pads, img.width, img.height)
    prefix = "r" if cfg.cue_source == "random" else ""
    return CueSpec(
        cand.ann_id,
        cand.category_id,
        cand.size_bin,
        cand.area_ratio,
        cand.box,
        window,
        scale,
        f"{img.image_id}_{prefix}{cand.ann_id}.{cfg.cue_format.replace('jpeg', 'jpg')}",
    )


def pad_window(box: Box, pads: list[float], width: int, height: int) -> tuple[int, int, int, int]:
    """Grow ``box`` by ``pads`` (left, right, top, bottom; fractions of its width/height), round outwards to whole
    pixels and clamp to the image.

    >>> pad_window((10.5, 20.0, 30.5, 40.0), [0.1, 0.1, 0.0, 0.5], 40, 50)
    (8, 20, 33, 50)
    """
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    x1, x2 = x1 - pads[0] * w, x2 + pads[1] * w
    y1, y2 = y1 - pads[2] * h, y2 + pads[3] * h
    # a tiny epsilon keeps float noise (e.g. 30.000000001) from adding a whole pixel
    eps = 1e-6
    return (
        max(0, math.floor(x1 + eps)),
        max(0, math.floor(y1 + eps)),
        min(width, math.ceil(x2 - eps)),
        min(height, math.ceil(y2 - eps)),
    )
