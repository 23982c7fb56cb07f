"""``locus-data export-sft``: the SFT-with-rationales baseline as a LLaMA-Factory "sharegpt" messages dataset.

    locus-data export-sft --data data/locus_cue --annotations data/locus_cue/annotations_rationale.jsonl \\
        --out data/locus_sft --coord-frame qwen2_5_vl

Writes ``OUT/<split>.jsonl`` (one ``{"messages", "images", "key"}`` object per line), the images under
``OUT/images/`` (full image first, then the cue, bytes copied unchanged), ``OUT/dataset_info.json`` registering
``locus_sft_<split>`` for LLaMA-Factory, and ``OUT/export_info.json`` with the counts and the settings below.

* The user turn is the dataset's ``problem`` rendered with the recipe's format prompt exactly as EasyR1 renders it
  (:func:`locus_train.prompting.render_prompt`), so SFT and RL students read the same question; it never holds the box.
* The assistant turn is ``<think>rationale</think><answer>[x1, y1, x2, y2]</answer>``, the box in the backbone's
  coordinate convention as integers (``--coord-frame``): for ``qwen2_5_vl`` that is pixels of the image the model
  sees after the ``--min-pixels``/``--max-pixels`` resize and the processor's smart resize. LLaMA-Factory resizes
  images with the same rule, so train with ``image_min_pixels``/``image_max_pixels`` equal to these values (they are
  in ``export_info.json``), or the boxes no longer match the pixels the model sees.
* Failed annotations and examples without one are skipped and counted.
"""

import argparse
import dataclasses
import json
import re
import sys
from collections import Counter
from pathlib import Path

from tqdm import tqdm

from locus_baselines.annotations import load_for_export
from locus_data.config import SPLITS
from locus_data.errors import UserError, reports_user_errors
from locus_data.images import ImageTooLarge, open_image
from locus_data.outputs import check_output, staged_output
from locus_data.rows import Row, count_rows, image_format, iter_rows, split_files
from locus_reward.frames import COORD_FRAMES, frame_extent, to_model
from locus_reward.ground_truth import loads
from locus_reward.parsing import format_answer
from locus_train.prompting import load_format_prompt, render_prompt
from locus_train.recipe import DEFAULT_FORMAT_PROMPTS, DEFAULT_FRAME, read_recipe, resolve


DATASET_PREFIX = "locus_sft"
SUFFIXES = {"png": "png", "jpeg": "jpg", "webp": "webp"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="dataset directory with train.parquet / val.parquet")
    parser.add_argument("--annotations", required=True, help="rationale annotations JSONL from `annotate`")
    parser.add_argument("--out", required=True, help="output directory (LLaMA-Factory dataset_dir)")
    parser.add_argument("--splits", nargs="+", default=list(SPLITS), choices=SPLITS, help="splits to export")
    parser.add_argument(
        "--recipe",
        help="EasyR1 recipe YAML (e.g. config/locus_qwen2_5_vl_7b.yaml) whose coord_frame, min/max_pixels and "
        "format_prompt become the defaults, so the SFT baseline sees what the RL run sees",
    )
    parser.add_argument(
        "--coord-frame",
        choices=COORD_FRAMES,
        help=f"box convention of the student (default {DEFAULT_FRAME.coord_frame})",
    )
    parser.add_argument(
        "--min-pixels", type=int, help=f"data.min_pixels of the recipe (default {DEFAULT_FRAME.min_pixels})"
    )
    parser.add_argument(
        "--max-pixels", type=int, help=f"data.max_pixels of the recipe (default {DEFAULT_FRAME.max_pixels})"
    )
    parser.add_argument(
        "--format-prompt",
        help="jinja format prompt for the student question (default: the recipe's prompt for --coord-frame; "
        "'none' for the plain problem)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing non-empty --out directory")


def model_box(answer: str, coord_frame: str, min_pixels: int | None, max_pixels: int | None) -> list[int]:
    """The ground truth as the backbone writes it: integers, clamped to the frame, never collapsed to zero width.

    >>> model_box('{"box": [64.0, 48.0, 320.0, 240.0], "width": 640, "height": 480}', "qwen3_vl", 3136, 4194304)
    [100, 100, 500, 500]
    >>> model_box('{"box": [64.0, 48.0, 320.0, 240.0], "width": 640, "height": 480}', "qwen2_5_vl", 3136, 4194304)
    [64, 48, 322, 238]
    """
    gt = loads(answer)
    limits = {"min_pixels": min_pixels, "max_pixels": max_pixels}
    extent_w, extent_h = frame_extent(gt.width, gt.height, coord_frame, **limits)
    x1, y1, x2, y2 = (round(v) for v in to_model(gt.box, gt.width, gt.height, coord_frame, **limits))
    x1, x2 = _ordered(x1, x2, int(extent_w))
    y1, y2 = _ordered(y1, y2, int(extent_h))
    return [x1, y1, x2, y2]


def _ordered(lo: int, hi: int, extent: int) -> tuple[int, int]:
    # a box a fraction of a unit wide can round to lo == hi; widen it by one unit inside the frame
    lo, hi = max(0, min(lo, extent)), max(0, min(hi, extent))
    if hi <= lo:
        hi = min(lo + 1, extent)
        lo = hi - 1
    return lo, hi


def sft_target(rationale: str, box: list[int]) -> str:
    """The assistant turn, in the RL output format.

    >>> sft_target("The cue is the red sign above the door.", [12, 40, 88, 97])
    '<think>The cue is the red sign above the door.</think><answer>[12, 40, 88, 97]</answer>'
    """
    return f"<think>{rationale}</think><answer>{format_answer(box)}</answer>"


def resolve_settings(args: argparse.Namespace) -> None:
    """Fill unset ``coord_frame``/``min_pixels``/``max_pixels``/``format_prompt``: flag > ``--recipe`` > built-in."""
    recipe = read_recipe(args.recipe) if args.recipe else None
    names = ("coord_frame", "min_pixels", "max_pixels", "format_prompt")
    vars(args).update(
        resolve({name: getattr(args, name) for name in names}, recipe, dataclasses.asdict(DEFAULT_FRAME))
    )
    if args.coord_frame not in COORD_FRAMES:
        raise UserError(f"{args.recipe}: unknown coord_frame {args.coord_frame!r}")
    if recipe is not None and args.format_prompt == recipe.format_prompt and args.coord_frame != recipe.coord_frame:
        # the recipe's prompt asks for its own frame: targets in another frame would contradict the question
        raise UserError(
            f"--coord-frame {args.coord_frame} contradicts {args.recipe} (coord_frame {recipe.coord_frame}, whose "
            "format prompt asks for that frame); drop --coord-frame, or give --format-prompt for the other frame"
        )
    for flag, value in (("--min-pixels", args.min_pixels), ("--max-pixels", args.max_pixels)):
        if value is not None and value < 1:
            raise UserError(f"{flag} must be at least 1, got {value}")
    if args.min_pixels is not None and args.max_pixels is not None and args.min_pixels > args.max_pixels:
        raise UserError(f"--min-pixels {args.min_pixels} is larger than --max-pixels {args.max_pixels}")


def _format_prompt(args: argparse.Namespace) -> str | None:
    if args.format_prompt == "none":
        return None
    if args.format_prompt is not None:
        try:
            return load_format_prompt(args.format_prompt)
        except FileNotFoundError as err:
            raise UserError(str(err)) from None
    default = DEFAULT_FORMAT_PROMPTS.get(args.coord_frame)
    if default is not None and default.is_file():
        args.format_prompt = str(default)
        return default.read_text(encoding="utf-8")
    print(f"note: no format prompt for {args.coord_frame}; the student prompt is the plain problem")
    return None


def prepare_out(out: Path, data: str | Path, inputs: list[Path], overwrite: bool) -> None:
    """Check ``out`` before anything is read or written: not the dataset's own directory, not over an input (the
    annotations file kept in it, say), a folder, and empty unless ``overwrite``. Nothing is removed here: the
    export is written aside and replaces only its own earlier files once complete
    (:func:`locus_data.outputs.staged_output`)."""
    if out.resolve() == Path(data).resolve():
        raise UserError(f"--out {out} is the dataset directory; choose another")
    check_output(out, inputs, expect="dir")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise UserError(f"{out} is not empty; pass --overwrite to replace an earlier export")


EXPORT_FILES = ("dataset_info.json", "export_info.json", *(f"{split}.jsonl" for split in SPLITS))
"""the top-level files an SFT export writes"""
IMAGE_NAME = re.compile(rf"images/({'|'.join(SPLITS)})_\d{{6}}_(full|cue)\.({'|'.join(SUFFIXES.values())})")
"""the images it writes (a user's other files under images/ are never its own)"""


def owned_by_export(rel: str) -> bool:
    """True for the paths (relative to --out) an SFT export writes, which ``--overwrite`` replaces.

    >>> owned_by_export("images/train_000012_cue.jpg"), owned_by_export("images/keep.txt")
    (True, False)
    """
    return rel in EXPORT_FILES or IMAGE_NAME.fullmatch(rel) is not None


@reports_user_errors
def run(args: argparse.Namespace) -> int:
    resolve_settings(args)
    files = split_files(args.data, args.splits)
    annotations = load_for_export(args.annotations, "rationale")
    format_prompt = _format_prompt(args)
    out = Path(args.out)
    prepare_out(out, args.data, [*files.values(), Path(args.annotations)], args.overwrite)
    counts: dict[str, Counter[str]] = {}
    # written aside and moved into --out only once complete: an error leaves no empty JSONL nor half the images
    with staged_output(out, owned_by_export) as stage:
        (stage / "images").mkdir()
        for split, path in files.items():
            counts[split] = Counter()
            progress = tqdm(iter_rows(split, path), total=count_rows(path), desc=f"export-sft {split}", unit="ex")
            with (stage / f"{split}.jsonl").open("w", encoding="utf-8") as f:
                for row in progress:
                    record = annotations.get(row.key)
                    if record is None or record.status != "ok":
                        counts[split]["missing" if record is None else "failed"] += 1
                        continue
                    try:
                        example = _example(row, record.text, stage, format_prompt, args)
                    except ImageTooLarge as err:  # what LLaMA-Factory's loader (PIL) would refuse mid-training
                        print(f"note: {row.key} skipped: {err}", file=sys.stderr)
                        counts[split]["image_too_large"] += 1
                        continue
                    f.write(json.dumps(example, ensure_ascii=False) + "\n")
                    counts[split]["written"] += 1
        if not any(c["written"] for c in counts.values()):
            raise UserError(
                f"no ok annotation in {args.annotations} matches {args.data} (keys hash each row's answer and "
                "image_id, so annotations of a rebuilt dataset do not match)"
            )
        _write_info(stage, counts, format_prompt, args)
    for split, c in counts.items():
        too_large = f", {c['image_too_large']} with an image over the size limit" if c["image_too_large"] else ""
        print(
            f"export-sft {split}: {c['written']} written, {c['failed']} failed annotations skipped, "
            f"{c['missing']} without annotation{too_large} -> {out / f'{split}.jsonl'}"
        )
    print(f"LLaMA-Factory: dataset_dir={out} image_min_pixels={args.min_pixels} image_max_pixels={args.max_pixels}")
    return 0


def _example(row: Row, rationale: str, out: Path, format_prompt: str | None, args: argparse.Namespace) -> dict:
    paths = []
    for i, role in enumerate(("full", "cue")):
        image = row.image_bytes(i)
        with open_image(image, f"{row.key} {role} image"):  # header only: the size limit, before any copy
            pass
        rel = f"images/{row.split}_{row.index:06d}_{role}.{SUFFIXES[image_format(image)]}"
        (out / rel).write_bytes(image)
        paths.append(rel)
    box = model_box(row.answer, args.coord_frame, args.min_pixels, args.max_pixels)
    return {
        "messages": [
            {"role": "user", "content": render_prompt(row.problem, format_prompt)},
            {"role": "assistant", "content": sft_target(rationale, box)},
        ],
        "images": paths,
        "key": row.key,
    }


def _write_info(out: Path, counts: dict[str, Counter[str]], format_prompt: str | None, args) -> None:
    dataset_info = {
        f"{DATASET_PREFIX}_{split}": {
            "file_name": f"{split}.jsonl",
            "formatting": "sharegpt",
            "columns": {"messages": "messages", "images": "images"},
            "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"},
        }
        for split in counts
    }
    (out / "dataset_info.json").write_text(json.dumps(dataset_info, indent=2) + "\n", encoding="utf-8")
    info = {
        "counts": {split: dict(c) for split, c in counts.items()},
        "coord_frame": args.coord_frame,
        "min_pixels": args.min_pixels,
        "max_pixels": args.max_pixels,
        "format_prompt": None if format_prompt is None else args.format_prompt,
        "llamafactory_args": {"image_min_pixels": args.min_pixels, "image_max_pixels": args.max_pixels},
    }
    (out / "export_info.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="locus-data export-sft", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
