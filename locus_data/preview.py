"""A PNG contact sheet for eyeballing a build: each tile is the full image with the ground-truth box drawn, next to
the cue at its stored size (or shrunk to fit), with a caption naming the row, bin, area ratio and cue size.

Uses PIL only. The box is drawn from the ``answer`` column on the stored full image, so a misaligned row shows up as
a box around the wrong thing.

A VQA manifest (:mod:`locus_data.vqa`) previews the same way (:func:`preview_manifest`): the image with its nested
boxes drawn (smallest in red, then orange, yellow, ...), next to the smallest box's surroundings cut from the
original at full resolution and enlarged, with the question, the lettered choices and the answer. An LFPC export
(:mod:`locus_data.lfpc_export`) previews its rows as the model sees them: the stored view with the boxes mapped
into it from original pixels, next to the smallest box cut from the original the row's image struct names.
"""

import random
from pathlib import Path

import pyarrow.parquet as pq
from PIL import Image, ImageDraw, ImageFont

from locus_data import lfpc_schema as ls
from locus_data.config import SPLITS, split_path
from locus_data.errors import UserError
from locus_data.images import BadImage, load_image
from locus_data.outputs import atomic_path, check_output
from locus_data.problems import IMAGE_MARKER
from locus_data.rows import check_dataset_dir, check_split_file, open_parquet, read_batches, require_columns
from locus_data.schema import (
    ANSWER,
    AREA_RATIO,
    CUE_SCALE,
    CUE_SOURCE,
    CUE_UPSAMPLED,
    IMAGE_ID,
    IMAGES,
    PROBLEM,
    SIZE_BIN,
)
from locus_data.vqa import MANIFEST_NAME, VqaItem, read_manifest
from locus_reward import frames, lfpc_ground_truth
from locus_reward.answers import LETTERS
from locus_reward.ground_truth import loads


FULL_W, FULL_H, CUE_BOX, CAPTION_H, PAD = 400, 300, 180, 34, 10
COLUMNS = 2


SHEET_SUFFIXES = (".png", ".jpg", ".jpeg")
"""what ``--out`` may end in (the sheet's format follows it)"""


def _open(entry, name: object = None) -> Image.Image:
    # a bomb or a truncated file is one line naming the row (BadImage), never a decoder traceback
    return load_image(entry, name)


def _sheet_target(out: str | Path | None, default: Path, inputs: list[Path]) -> Path:
    """--out (or the default) checked before anything is drawn: an image path, not a folder nor an input."""
    return check_output(Path(out) if out else default, inputs, suffixes=SHEET_SUFFIXES)


def _draw(tile, rows: list[dict], path: Path, labels: list[int], hint: str) -> list[Image.Image]:
    tiles = []
    for index, row in zip(labels, rows):
        try:
            tiles.append(tile(row, index))
        except BadImage as err:
            raise UserError(f"{path} row {index}: {err}") from None
        except (OSError, ValueError, KeyError, TypeError) as err:  # a ground truth that does not parse, a bad box
            raise UserError(f"{path} row {index}: cannot draw it ({err}); run locus-data validate {hint}") from None
    return tiles


TILE_COLUMNS = [IMAGES, ANSWER, IMAGE_ID, SIZE_BIN, AREA_RATIO, CUE_SOURCE, CUE_SCALE, CUE_UPSAMPLED]
"""what a cue-search tile reads"""


def _tile(row: dict, index: int) -> Image.Image:
    tile = Image.new("RGB", (FULL_W + CUE_BOX + 3 * PAD, FULL_H + CAPTION_H + 2 * PAD), (245, 245, 245))
    full, cue = _open(row[IMAGES][0], "full image"), _open(row[IMAGES][1], "cue")
    gt = loads(row[ANSWER])
    scale = min(FULL_W / full.width, FULL_H / full.height)
    shown = full.resize((round(full.width * scale), round(full.height * scale)), Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(shown)
    x1, y1, x2, y2 = (v * scale for v in gt.box)
    # a white halo under the red box keeps it visible on red or dark backgrounds
    draw.rectangle((x1 - 2, y1 - 2, x2 + 1, y2 + 1), outline=(255, 255, 255), width=1)
    draw.rectangle((x1 - 1, y1 - 1, x2, y2), outline=(230, 20, 20), width=2)
    tile.paste(shown, (PAD, PAD))
    # small cues are enlarged (up to 3x, nearest: pixels stay visible as pixels) so a person can see them
    cue_scale = min(3.0, CUE_BOX / max(cue.size))
    resample = Image.Resampling.NEAREST if cue_scale > 1 else Image.Resampling.BILINEAR
    cue_size = (max(1, round(cue.width * cue_scale)), max(1, round(cue.height * cue_scale)))
    cue_shown = cue.resize(cue_size, resample)
    cue_x, cue_y = shown.width + 2 * PAD, PAD
    tile.paste(cue_shown, (cue_x, cue_y))
    tile_draw = ImageDraw.Draw(tile)
    tile_draw.rectangle(
        (cue_x - 1, cue_y - 1, cue_x + cue_shown.width, cue_y + cue_shown.height), outline=(40, 40, 40), width=1
    )
    font = ImageFont.load_default()
    caption = (
        f"#{index} image {row[IMAGE_ID]}  {row[SIZE_BIN]}  area {row[AREA_RATIO] * 100:.2f}%  "
        f"{row[CUE_SOURCE]}\ncue {cue.width}x{cue.height} (scale {row[CUE_SCALE]:.2f}"
        f"{', upsampled' if row[CUE_UPSAMPLED] else ''}; shown x{cue_scale:.1f})  "
        f"box {[round(v, 1) for v in gt.box]} in {gt.width}x{gt.height}"
    )
    tile_draw.multiline_text((PAD, FULL_H + PAD + 2), caption, fill=(20, 20, 20), font=font, spacing=3)
    return tile


def _rows(path: Path, pf: pq.ParquetFile, picks: list[int], columns: list[str] | None = None) -> list[dict]:
    # read only the row groups holding the picked rows: a full train.parquet is many gigabytes
    if columns is not None:
        require_columns(path, pf.schema_arrow.names, columns)
    rows, start = [], 0
    for group in range(pf.metadata.num_row_groups):
        size = pf.metadata.row_group(group).num_rows
        wanted = [i - start for i in picks if start <= i < start + size]
        if wanted:
            table = next(read_batches(path, row_groups=[group], batch_rows=None))
            rows += [table.slice(i, 1).to_pylist()[0] for i in wanted]
        start += size
    return rows


def preview(
    dataset: str | Path, n: int = 12, split: str = SPLITS[0], out: str | Path | None = None, seed: int = 0
) -> Path:
    """Write a grid of ``n`` rows of ``split`` drawn at random with ``seed``; returns the PNG path."""
    dataset = check_dataset_dir(dataset)
    path = check_split_file(split_path(dataset, split))
    if n < 1:
        raise UserError(f"--n must be >= 1, got {n}")
    target = _sheet_target(out, dataset / "preview.png", [split_path(dataset, s) for s in SPLITS])
    pf = open_parquet(path)
    total = pf.metadata.num_rows
    if total == 0:
        raise UserError(f"{path} has no rows")
    picks = sorted(random.Random(seed).sample(range(total), min(n, total)))
    rows = _rows(path, pf, picks, TILE_COLUMNS)
    return _save_sheet(_draw(_tile, rows, path, picks, str(dataset)), target)


BOX_COLOURS = [(230, 20, 20), (255, 140, 0), (240, 220, 0), (40, 200, 40), (30, 120, 255)]
"""nested boxes, smallest first"""
DETAIL_SIDE = 64
"""the detail panel shows at least this many original pixels around the smallest box"""


def _detail(original: Image.Image, box: tuple[float, ...]) -> Image.Image:
    """The smallest box with some surroundings, cut from the original and enlarged (nearest: pixels stay pixels)."""
    x1, y1, x2, y2 = box
    side = max(DETAIL_SIDE, 1.5 * max(x2 - x1, y2 - y1))
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    left = int(min(max(0.0, cx - side / 2), max(0.0, original.width - side)))
    top = int(min(max(0.0, cy - side / 2), max(0.0, original.height - side)))
    detail = original.crop((left, top, min(original.width, left + int(side)), min(original.height, top + int(side))))
    zoom = CUE_BOX / max(detail.size)
    resample = Image.Resampling.NEAREST if zoom > 1 else Image.Resampling.BILINEAR
    return detail.resize((max(1, round(detail.width * zoom)), max(1, round(detail.height * zoom))), resample)


def _vqa_tile(item: VqaItem) -> Image.Image:
    tile = Image.new("RGB", (FULL_W + CUE_BOX + 3 * PAD, FULL_H + 3 * CAPTION_H // 2 + 2 * PAD), (245, 245, 245))
    full = _open(item.image)
    scale = min(FULL_W / full.width, FULL_H / full.height)
    shown = full.resize((round(full.width * scale), round(full.height * scale)), Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(shown)
    for level, box in reversed(list(enumerate(item.boxes))):  # the smallest on top
        x1, y1, x2, y2 = (v * scale for v in box)
        draw.rectangle((x1 - 1, y1 - 1, x2, y2), outline=BOX_COLOURS[min(level, len(BOX_COLOURS) - 1)], width=2)
    tile.paste(shown, (PAD, PAD))
    if item.boxes:
        tile.paste(_detail(full, item.boxes[0]), (shown.width + 2 * PAD, PAD))
    choices = "  ".join(f"{letter}. {text}" for letter, text in zip(LETTERS, item.choices or ()))
    caption = (
        f"{item.id}  {item.width}x{item.height}  {len(item.boxes)} boxes\n{item.question[:110]}\n"
        f"{choices[:110]}{'  ' if choices else ''}answer: {item.answer[:40]}"
    )
    font = ImageFont.load_default()
    ImageDraw.Draw(tile).multiline_text((PAD, FULL_H + PAD + 2), caption, fill=(20, 20, 20), font=font, spacing=3)
    return tile


def preview_manifest(manifest: str | Path, n: int = 12, out: str | Path | None = None, seed: int = 0) -> Path:
    """Write a grid of ``n`` questions of a VQA manifest drawn at random with ``seed``; returns the PNG path.

    The default path is ``preview.png`` beside a ``manifest.jsonl``, else ``<manifest stem>.preview.png``.
    """
    if n < 1:
        raise UserError(f"--n must be >= 1, got {n}")
    path = Path(manifest)
    path = path / MANIFEST_NAME if path.is_dir() else path
    default = path.parent / "preview.png" if path.name == MANIFEST_NAME else path.with_suffix(".preview.png")
    target = _sheet_target(out, default, [path])
    items = read_manifest(manifest)
    if not items:
        raise UserError(f"{manifest} has no rows")
    picks = sorted(random.Random(seed).sample(range(len(items)), min(n, len(items))))
    return _save_sheet(_draw(lambda i, _: _vqa_tile(items[i]), picks, path, picks, str(manifest)), target)


def _save_sheet(tiles: list[Image.Image], target: Path) -> Path:
    tile_w, tile_h = tiles[0].size
    rows = (len(tiles) + COLUMNS - 1) // COLUMNS
    sheet = Image.new("RGB", (COLUMNS * tile_w, rows * tile_h), (255, 255, 255))
    for k, tile in enumerate(tiles):
        sheet.paste(tile, ((k % COLUMNS) * tile_w, (k // COLUMNS) * tile_h))
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:  # a failed save leaves no half-written sheet (nor an earlier one harmed)
        sheet.save(tmp, format=Image.registered_extensions()[target.suffix.lower()])
    return target


def _export_tile(row: dict) -> Image.Image:
    """The view as the model is shown it, with the GT boxes mapped into it, next to the smallest box cut from the
    original: a box that lands on the wrong thing here lands there in training too."""
    tile = Image.new("RGB", (FULL_W + CUE_BOX + 3 * PAD, FULL_H + 3 * CAPTION_H // 2 + 2 * PAD), (245, 245, 245))
    entry = row[IMAGES][0]
    view = _open(entry)
    gt = lfpc_ground_truth.loads(row[ANSWER])
    scale = min(FULL_W / view.width, FULL_H / view.height)
    shown = view.resize((round(view.width * scale), round(view.height * scale)), Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(shown)
    for level, box in reversed(list(enumerate(gt.boxes))):  # the smallest on top
        in_view = frames.rescale_box(box, gt.width, gt.height, view.width, view.height)
        x1, y1, x2, y2 = (v * scale for v in in_view)
        draw.rectangle((x1 - 1, y1 - 1, x2, y2), outline=BOX_COLOURS[min(level, len(BOX_COLOURS) - 1)], width=2)
    tile.paste(shown, (PAD, PAD))
    if gt.boxes:
        tile.paste(_detail(_open(entry["path"]), gt.boxes[0]), (shown.width + 2 * PAD, PAD))
    question = row[PROBLEM].replace(IMAGE_MARKER, "").strip().splitlines()[0]
    caption = (
        f"{row[ls.ID]}  view {view.width}x{view.height} ({row[ls.VIEW]}) of {gt.width}x{gt.height}  "
        f"{len(gt.boxes)} boxes\n{question[:110]}\nanswer: {gt.answer[:40]}"
    )
    font = ImageFont.load_default()
    ImageDraw.Draw(tile).multiline_text((PAD, FULL_H + PAD + 2), caption, fill=(20, 20, 20), font=font, spacing=3)
    return tile


def preview_export(
    export: str | Path, n: int = 12, split: str = SPLITS[0], out: str | Path | None = None, seed: int = 0
) -> Path:
    """A grid of ``n`` rows of an LFPC export (:mod:`locus_data.lfpc_export`) drawn with ``seed``; returns the PNG."""
    export = Path(export)
    path = split_path(export, split)
    if path.is_dir():
        check_split_file(path)
    if not path.is_file():
        raise UserError(f"{path} does not exist; run locus-data export-lfpc first")
    if n < 1:
        raise UserError(f"--n must be >= 1, got {n}")
    target = _sheet_target(out, export / "preview.png", [split_path(export, s) for s in SPLITS])
    pf = open_parquet(path)
    total = pf.metadata.num_rows
    if total == 0:
        raise UserError(f"{path} has no rows")
    picks = sorted(random.Random(seed).sample(range(total), min(n, total)))
    rows = _rows(path, pf, picks)
    # a missing original or a ground truth that does not parse: one line naming the row
    return _save_sheet(_draw(lambda row, _: _export_tile(row), rows, path, picks, str(export)), target)
