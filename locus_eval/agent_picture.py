"""``trajectories.png``: the first episodes of an agent run, to look at before trusting a number.

One row per episode: the full image with the GT boxes (thin, green) and each crop's box as the model asked for it
(``box_orig``, numbered in call order, one colour each), the crops beside it under the same numbers, and a caption
with the id, whether the answer was right, why the episode ended, the question, the ground truth and the
prediction. A crop is shown as the model got it (before the processor's resize): the saved file under ``crops/``
when the run kept them, else the region cut again from the original (``crop_box``; the GT region in crop mode gt),
or, in noise mode without saved crops, fresh noise of the crop's size. Drawn with PIL, like ``locus-data preview``.
"""

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from locus_data.images import open_image
from locus_eval.benchmarks import Item


FULL_W, FULL_H = 480, 360
"""box the full image is fitted into"""
CROP_SIDE = 150
"""box each crop is fitted into"""
MAX_CROPS = 6
"""crops drawn per episode (the rest are counted in the caption)"""
PAD, CAPTION_H, FONT_SIZE = 10, 76, 13
CROP_COLOURS = [(230, 20, 20), (30, 120, 255), (255, 140, 0), (170, 40, 200), (0, 170, 170), (120, 80, 20)]
GT_COLOUR = (40, 200, 40)


def _crops(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [call for turn in record["turns"] for call in turn["calls"] if call["error"] is None]


def _crop_image(call: Mapping[str, Any], original: Image.Image, crops_dir: Path | None) -> Image.Image:
    if crops_dir is not None and call.get("crop_file") and (crops_dir / call["crop_file"]).is_file():
        with Image.open(crops_dir / call["crop_file"]) as saved:
            return saved.convert("RGB")
    if call.get("crop_box") is not None:
        return original.crop(tuple(call["crop_box"]))
    width, height = call["crop_size"]
    noise = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(noise, "RGB")


def _fit(image: Image.Image, width: int, height: int) -> tuple[Image.Image, float]:
    scale = min(width / image.width, height / image.height)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    resample = Image.Resampling.NEAREST if scale > 1 else Image.Resampling.BILINEAR  # enlarged pixels stay pixels
    return image.resize(size, resample), scale


def _font() -> Any:
    try:
        return ImageFont.load_default(size=FONT_SIZE)
    except (TypeError, ImportError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _tile(item: Item, record: Mapping[str, Any], crops_dir: Path | None) -> Image.Image:
    font = _font()
    with open_image(item.image) as opened:
        original = opened.convert("RGB")
    shown, scale = _fit(original, FULL_W, FULL_H)
    width = FULL_W + 2 * PAD + MAX_CROPS * (CROP_SIDE + PAD)
    top = max(shown.height, CROP_SIDE) + 2 * PAD  # the caption starts under the image and the crops
    tile = Image.new("RGB", (width, top + CAPTION_H), (245, 245, 245))
    draw = ImageDraw.Draw(tile)
    canvas = ImageDraw.Draw(shown)
    for box in record["gt_boxes"]:
        canvas.rectangle([v * scale for v in box], outline=GT_COLOUR, width=1)
    crops = _crops(record)
    for number, call in enumerate(crops, start=1):
        colour = CROP_COLOURS[(number - 1) % len(CROP_COLOURS)]
        x1, y1, x2, y2 = (v * scale for v in call["box_orig"])
        canvas.rectangle((x1, y1, x2, y2), outline=colour, width=2)
        canvas.text((x1 + 3, y1 + 2), str(number), fill=colour, font=font)
    tile.paste(shown, (PAD, PAD))
    for number, call in enumerate(crops[:MAX_CROPS], start=1):
        left = FULL_W + 2 * PAD + (number - 1) * (CROP_SIDE + PAD)
        crop, _ = _fit(_crop_image(call, original, crops_dir), CROP_SIDE, CROP_SIDE - 18)
        colour = CROP_COLOURS[(number - 1) % len(CROP_COLOURS)]
        draw.text((left, PAD), f"{number}: {call['crop_size'][0]}x{call['crop_size'][1]}", fill=colour, font=font)
        tile.paste(crop, (left, PAD + 18))
    verdict = "RIGHT" if record["correct"] else "WRONG"
    more = f", {len(crops) - MAX_CROPS} more not drawn" if len(crops) > MAX_CROPS else ""
    choices = "  ".join(f"{chr(65 + i)}. {text}" for i, text in enumerate(record.get("choices") or ()))
    lines = [
        f"{record['id']}  {verdict}  (ended: {record['end_reason']}; {len(record['turns'])} turns, "
        f"{len(crops)} crops{more})",
        textwrap.shorten(record["question"], 150, placeholder=" ..."),
        textwrap.shorten(choices, 150, placeholder=" ...") if choices else "",
        f"answer: {record['answer']}   prediction: "
        + (textwrap.shorten(record["prediction"], 100, placeholder=" ...") if record["prediction"] else "(none)"),
    ]
    text = "\n".join(line for line in lines if line)
    draw.multiline_text((PAD, top), text, fill=(20, 20, 20), font=font, spacing=3)
    return tile


def draw_trajectories(
    target: Path, items: Sequence[Item], records: Sequence[Mapping[str, Any]], crops_dir: Path | None = None
) -> Path:
    """Draw ``items`` (with their trajectories.jsonl ``records``) one under another into ``target`` (PNG)."""
    tiles = [_tile(item, record, crops_dir) for item, record in zip(items, records, strict=True)]
    sheet = Image.new("RGB", (tiles[0].width, sum(tile.height for tile in tiles)), (255, 255, 255))
    top = 0
    for tile in tiles:
        sheet.paste(tile, (0, top))
        top += tile.height
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    sheet.save(tmp, format="PNG")
    tmp.replace(target)
    return target
