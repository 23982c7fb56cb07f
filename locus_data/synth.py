"""A small COCO-format detection set drawn with PIL, for demos, tests and the benchmark.

Scenes look like hard photos for this task, not flat test cards: smooth coloured blotches over a gradient with
pixel noise; many small shapes of six categories (disc, box, triangle, ring, cross, diamond) that overlap one
another, plus a few small and large ones; every fifth image grayscale; COCO's common sizes (640x480, 500x375,
427x640, ...). Boxes are the exact pixel extent of each drawn shape. A few annotations are realistic noise: specks
below 16 px and an occasional ``iscrowd=1`` region. Output is the standard layout, so ``--coco-root`` works:
``annotations/instances_train2014.json`` and ``train2014/COCO_train2014_<id>.jpg``.

With the defaults each image has about 12 tiny, 4 small and 1 large usable object, so 60 images fill a 240-example
70:30 build.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from tqdm import tqdm

from locus_data.errors import UserError
from locus_data.outputs import atomic_write_text, check_output


SIZES = [(640, 480), (500, 375), (427, 640), (640, 427), (480, 640), (375, 500), (640, 360), (612, 612)]
CATEGORIES = ["disc", "box", "triangle", "ring", "cross", "diamond"]


@dataclass(frozen=True)
class SynthSpec:
    tiny: tuple[int, int] = (10, 15)
    """range of tiny objects (area < 1% of the image) per image"""
    small: tuple[int, int] = (3, 6)
    """range of small objects (1-5%)"""
    large: tuple[int, int] = (0, 2)
    """range of large objects (10-30%)"""
    specks: tuple[int, int] = (1, 4)
    """objects below 16 px on a side (skipped by the builder)"""
    gray_every: int = 5
    """every n-th image is stored as a grayscale JPEG"""


def _background(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    # blotches: coarse noise upsampled; gradient: a random linear ramp; then per-pixel noise
    coarse = rng.integers(0, 256, size=(max(2, height // 40), max(2, width // 40), 3), dtype=np.uint8)
    blotches = np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC), dtype=np.int16)
    ramp = (
        np.linspace(-60, 60, width)[None, :, None] * rng.choice([-1, 1]) + np.linspace(-40, 40, height)[:, None, None]
    )
    fine = rng.integers(-25, 26, size=(height, width, 1), dtype=np.int16)
    pixels = np.clip(blotches * 0.7 + 40 + ramp + fine, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


def draw_shape(draw: ImageDraw.ImageDraw, category: int, box: tuple[int, int, int, int], color: tuple) -> None:
    """Draw shape ``CATEGORIES[category]`` filling ``box`` (exclusive corners), outlined in the inverse colour."""
    x1, y1, x2, y2 = box[0], box[1], box[2] - 1, box[3] - 1  # PIL corners are inclusive
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    outline = tuple(255 - c for c in color)
    if category == 0:
        draw.ellipse((x1, y1, x2, y2), fill=color, outline=outline)
    elif category == 1:
        draw.rectangle((x1, y1, x2, y2), fill=color, outline=outline)
    elif category == 2:
        draw.polygon([(x1, y2), (x2, y2), (cx, y1)], fill=color, outline=outline)
    elif category == 3:
        width = max(2, int(min(x2 - x1, y2 - y1) / 5))
        draw.ellipse((x1, y1, x2, y2), outline=color, width=width)
    elif category == 4:
        tw, th = max(2, (x2 - x1) // 3), max(2, (y2 - y1) // 3)
        draw.rectangle((x1, cy - th / 2, x2, cy + th / 2), fill=color)
        draw.rectangle((cx - tw / 2, y1, cx + tw / 2, y2), fill=color)
    else:
        draw.polygon([(cx, y1), (x2, cy), (cx, y2), (x1, cy)], fill=color, outline=outline)


def _object_box(rng: np.random.Generator, width: int, height: int, ratio: float) -> tuple[int, int, int, int]:
    aspect = rng.uniform(0.6, 1.7)
    w = max(1, min(width - 1, round((ratio * width * height * aspect) ** 0.5)))
    h = max(1, min(height - 1, round(ratio * width * height / w)))
    x, y = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
    return x, y, x + w, y + h


def synth_image(rng: np.random.Generator, width: int, height: int, spec: SynthSpec) -> tuple[Image.Image, list]:
    image = _background(rng, width, height)
    draw = ImageDraw.Draw(image)
    objects = []
    ranges = {"large": (0.10, 0.30), "small": (0.012, 0.045), "tiny": (0.0012, 0.008)}
    counts = {
        "large": spec.large,
        "small": spec.small,
        "tiny": spec.tiny,
    }
    # large first so the smaller objects are drawn over them (overlaps, with the small ones fully visible)
    for kind in ("large", "small", "tiny"):
        lo, hi = counts[kind]
        for _ in range(int(rng.integers(lo, hi + 1))):
            box = _object_box(rng, width, height, float(rng.uniform(*ranges[kind])))
            objects.append((int(rng.integers(0, len(CATEGORIES))), box, 0))
    for _ in range(int(rng.integers(spec.specks[0], spec.specks[1] + 1))):
        side = int(rng.integers(4, 14))
        x, y = int(rng.integers(0, width - side)), int(rng.integers(0, height - side))
        objects.append((0, (x, y, x + side, y + side), 0))
    if rng.random() < 0.2:  # a crowd region, as COCO marks groups of people
        objects.append((1, _object_box(rng, width, height, 0.05), 1))
    for category, box, crowd in objects:
        if not crowd:
            color = tuple(int(c) for c in rng.integers(0, 256, size=3))
            draw_shape(draw, category, box, color)
    if rng.random() < 0.3:
        image = image.filter(ImageFilter.GaussianBlur(0.6))
    return image, objects


def synth(
    out: str | Path,
    num_images: int,
    seed: int = 0,
    spec: SynthSpec = SynthSpec(),
    progress: bool = True,
    overwrite: bool = False,
) -> Path:
    """Write the dataset under ``out``; returns the annotation file path.

    ``out`` must be new or empty unless ``overwrite`` (a COCO root given by mistake keeps its annotations);
    ``num_images`` must be at least 1 and ``seed`` non-negative: UserError otherwise.
    """
    if num_images < 1:
        raise UserError(f"--num-images must be at least 1, got {num_images}")
    if seed < 0:
        raise UserError(f"--seed must be a non-negative integer, got {seed}")
    out = check_output(out, expect="dir", overwrite=overwrite)
    image_dir = out / "train2014"
    image_dir.mkdir(parents=True, exist_ok=True)
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for i in tqdm(range(num_images), desc="synth", unit="img", disable=not progress):
        rng = np.random.default_rng([seed, i])
        image_id = 100000 + i
        width, height = SIZES[i % len(SIZES)]
        image, objects = synth_image(rng, width, height, spec)
        if spec.gray_every and i % spec.gray_every == spec.gray_every - 1:
            image = image.convert("L")
        file_name = f"COCO_train2014_{image_id:012d}.jpg"
        image.save(image_dir / file_name, format="JPEG", quality=90)
        images.append({"id": image_id, "file_name": file_name, "width": width, "height": height})
        for category, (x1, y1, x2, y2), crowd in objects:
            w, h = x2 - x1, y2 - y1
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": category + 1,
                    "bbox": [float(x1), float(y1), float(w), float(h)],
                    "area": float(w * h) * 0.75,  # a segmentation area differs from the box area, as in COCO
                    "iscrowd": crowd,
                    "segmentation": [[x1, y1, x2, y1, x2, y2, x1, y2]],
                }
            )
    categories = [{"id": i + 1, "name": name, "supercategory": "shape"} for i, name in enumerate(CATEGORIES)]
    ann_path = out / "annotations" / "instances_train2014.json"
    atomic_write_text(ann_path, json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return ann_path
