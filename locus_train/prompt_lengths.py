"""Measure every row's prompt length offline, exactly as EasyR1 counts it, and optionally drop overlong rows.

EasyR1's ``data.filter_overlong_prompts`` re-processes every row with its images each time the trainer starts (an
hour or more on large sets, again on every resume). Doing it once when the data is built lets the recipes turn that
filter off. The count is EasyR1's (``RLHFDataset._filter_overlong_prompts`` at b44b311):

1. render the format prompt with ``content`` and split on ``<image>`` into one user turn
   (:func:`locus_train.prompting.render_prompt`, :func:`locus_train.prompting.build_messages`);
2. ``processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)``;
3. each image through EasyR1's ``process_image`` (:func:`locus_train.images.process_image`);
4. ``processor(images, [prompt], add_special_tokens=False)["input_ids"]`` length.

The processor is the checkpoint's own (EasyR1 loads it with ``AutoProcessor.from_pretrained(model_path)``), so its
pixel limits apply on top of ``--min-pixels``/``--max-pixels``, which must equal the recipe's ``data.*_pixels``.

Registered as ``locus-data measure-prompts``; also ``python -m locus_train.prompt_lengths``.
"""

import argparse
import hashlib
import json
import statistics
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from locus_data.config import SPLITS
from locus_data.errors import UserError
from locus_data.schema import IMAGES, PROBLEM
from locus_train.images import process_image
from locus_train.processor import load_processor
from locus_train.prompting import build_messages, load_format_prompt, render_prompt
from locus_train.recipe import DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS, read_recipe, resolve


REPORT_VERSION = 1
MAX_LISTED_ROWS = 20  # overlong row indices kept in the report (the filtered copy drops all of them)


def prompt_length(
    processor: Any,
    problem: str,
    images: list[Any],
    format_prompt: str | None,
    min_pixels: int | None,
    max_pixels: int | None,
) -> int:
    """Tokens EasyR1 feeds the model for one row (the number its overlong filter compares with the budget)."""
    messages = build_messages(render_prompt(problem, format_prompt))
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    pixels = [process_image(image, min_pixels, max_pixels) for image in images] or None
    inputs = processor(pixels, [prompt], add_special_tokens=False, return_tensors="np")
    return int(inputs["input_ids"].shape[-1])


def iter_rows(path: Path, batch_size: int = 64) -> Iterator[dict[str, Any]]:
    """``problem`` and ``images`` of each row, one record batch in memory at a time."""
    parquet = pq.ParquetFile(path)
    for batch in parquet.iter_batches(batch_size=batch_size, columns=[PROBLEM, IMAGES]):
        yield from batch.to_pylist()


def measure_file(
    path: Path,
    processor: Any,
    format_prompt: str | None,
    min_pixels: int | None,
    max_pixels: int | None,
    limit: int | None = None,
    progress: bool = True,
) -> list[int]:

    total = pq.ParquetFile(path).metadata.num_rows
    total = min(total, limit) if limit is not None else total
    lengths: list[int] = []
    rows = tqdm(iter_rows(path), total=total, desc=f"measuring {path.name}", unit="row", disable=not progress)
    for row in rows:
        if len(lengths) == total:
            break
        lengths.append(prompt_length(processor, row[PROBLEM], row[IMAGES], format_prompt, min_pixels, max_pixels))
    return lengths


def summarize(lengths: list[int], max_prompt_length: int) -> dict[str, Any]:
    """Distribution of one split's prompt lengths and the rows over the budget."""
    ordered = sorted(lengths)

    def quantile(q: float) -> int:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0

    overlong = [i for i, n in enumerate(lengths) if n > max_prompt_length]
    return {
        "rows": len(lengths),
        "min": ordered[0] if ordered else 0,
        "mean": round(statistics.fmean(ordered), 1) if ordered else 0.0,
        "p50": quantile(0.5),
        "p99": quantile(0.99),
        "max": ordered[-1] if ordered else 0,
        "overlong": len(overlong),
        "overlong_rows": overlong[:MAX_LISTED_ROWS],
    }


def write_filtered(src: Path, dst: Path, keep: list[bool]) -> int:
    """Copy ``src`` to ``dst`` without the rows where ``keep`` is False; schema metadata is kept. Returns rows kept."""
    parquet = pq.ParquetFile(src)
    row_group_size = max(1, parquet.metadata.row_group(0).num_rows) if parquet.metadata.num_row_groups else 128
    dst.parent.mkdir(parents=True, exist_ok=True)
    start = kept = 0
    with pq.ParquetWriter(dst, parquet.schema_arrow) as writer:
        for batch in parquet.iter_batches(batch_size=row_group_size):
            mask = pa.array(keep[start : start + batch.num_rows])
            start += batch.num_rows
            part = batch.filter(mask)
            kept += part.num_rows
            if part.num_rows:
                writer.write_batch(part, row_group_size=row_group_size)
    return kept


def sha256(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode("utf-8")).hexdigest()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", type=Path, help="folder holding train.parquet and val.parquet")
    parser.add_argument("--model", required=True, help="checkpoint (or hub id) whose processor EasyR1 will load")
    parser.add_argument(
        "--recipe",
        type=Path,
        help="training YAML (config/locus_*.yaml) whose format prompt, pixel limits and max_prompt_length are the "
        "defaults of the four flags below",
    )
    parser.add_argument("--format-prompt", type=Path, help="the recipe's data.format_prompt jinja file")
    parser.add_argument(
        "--min-pixels", type=int, help=f"the recipe's data.min_pixels (default: --recipe's, else {DEFAULT_MIN_PIXELS})"
    )
    parser.add_argument(
        "--max-pixels", type=int, help=f"the recipe's data.max_pixels (default: --recipe's, else {DEFAULT_MAX_PIXELS})"
    )
    parser.add_argument("--max-prompt-length", type=int, help="the recipe's data.max_prompt_length (or --recipe)")
    parser.add_argument("--splits", nargs="+", default=list(SPLITS), choices=SPLITS, help="splits to measure")
    parser.add_argument("--report", type=Path, help="report JSON (default DATASET/prompt_lengths.json)")
    parser.add_argument(
        "--write-filtered",
        type=Path,
        metavar="OUT",
        help="also write OUT/<split>.parquet without the overlong rows (train on those files)",
    )
    parser.add_argument("--limit", type=int, help="measure only the first N rows of each split (a quick look)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _fill_from_recipe(args: argparse.Namespace) -> None:
    """Unset flags take the recipe's values (explicit flags win), then the shipped recipes' pixel limits."""
    recipe = read_recipe(args.recipe) if args.recipe else None
    builtin = {"min_pixels": DEFAULT_MIN_PIXELS, "max_pixels": DEFAULT_MAX_PIXELS}
    names = ("format_prompt", "min_pixels", "max_pixels", "max_prompt_length")
    vars(args).update(resolve({name: getattr(args, name) for name in names}, recipe, builtin))
    if args.format_prompt is not None:
        args.format_prompt = Path(args.format_prompt)
    if args.max_prompt_length is None:
        raise UserError("give --max-prompt-length or --recipe")


def run(args: argparse.Namespace) -> int:
    """Measure, print the distribution, write the report (and filtered copies). Exit 1 if rows are overlong."""
    try:
        _fill_from_recipe(args)
    except UserError as err:
        print(f"measure-prompts: error: {err}", file=sys.stderr)
        return 2
    format_prompt = load_format_prompt(args.format_prompt)
    files = {split: args.dataset / f"{split}.parquet" for split in args.splits}
    missing = [str(path) for path in files.values() if not path.is_file()]
    if missing:
        print(f"measure-prompts: error: missing {', '.join(missing)}", file=sys.stderr)
        return 2
    processor = load_processor(args.model) if Path(args.model).is_dir() else _hub_processor(args.model)
    report: dict[str, Any] = {
        "version": REPORT_VERSION,
        "model": str(args.model),
        "processor_class": type(processor).__name__,
        "format_prompt": str(args.format_prompt) if args.format_prompt else None,
        "format_prompt_sha256": sha256(format_prompt),
        "min_pixels": args.min_pixels,
        "max_pixels": args.max_pixels,
        "max_prompt_length": args.max_prompt_length,
        "limit": args.limit,
        "splits": {},
        "filtered": None,
    }
    overlong = 0
    for split, path in files.items():
        lengths = measure_file(
            path, processor, format_prompt, args.min_pixels, args.max_pixels, args.limit, not args.quiet
        )
        summary = summarize(lengths, args.max_prompt_length)
        report["splits"][split] = {"file": str(path.resolve()), **summary}
        overlong += summary["overlong"]
        print(
            f"{split}: {summary['rows']} rows, prompt tokens min {summary['min']} / p50 {summary['p50']} / "
            f"p99 {summary['p99']} / max {summary['max']}; {summary['overlong']} over {args.max_prompt_length}"
        )
        if args.write_filtered is not None:
            if args.limit is not None:
                print(
                    "measure-prompts: error: --write-filtered needs every row measured (no --limit)", file=sys.stderr
                )
                return 2
            keep = [n <= args.max_prompt_length for n in lengths]
            kept = write_filtered(path, args.write_filtered / path.name, keep)
            report["filtered"] = str(args.write_filtered.resolve())
            print(f"wrote {args.write_filtered / path.name}: {kept} of {len(keep)} rows")
    report_path = args.report or (args.write_filtered or args.dataset) / "prompt_lengths.json"
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {report_path}")
    # overlong rows left in the data would be right-truncated by EasyR1 (image tokens cut: the run crashes)
    return 1 if overlong and args.write_filtered is None else 0


def _hub_processor(model: str):
    from transformers import AutoProcessor  # heavy: loaded only when a model runs

    return AutoProcessor.from_pretrained(model)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="locus-data measure-prompts", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
