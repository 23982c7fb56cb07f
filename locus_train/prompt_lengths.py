"""Measure every row's prompt length offline, exactly as EasyR1 counts it, and optionally drop overlong rows.

EasyR1's ``data.filter_overlong_prompts`` re-processes every row with its images each time the trainer starts (an
hour or more on large sets, again on every resume). Doing it once when the data is built lets the recipes turn that
filter off. The count is EasyR1's (``RLHFDataset._filter_overlong_prompts`` at b44b311):

1. render the format prompt with ``content`` and split on ``<image>`` into one user turn
   (:func:`locus_train.prompting.render_prompt`, :func:`locus_train.prompting.build_messages`);
2. ``processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)``;
3. each image through EasyR1's ``process_image`` (:func:`locus_train.images.process_image`);
4. ``processor(images, [prompt], add_special_tokens=False)["input_ids"]`` length.

``--system-prompt FILE`` opens every prompt with that system turn (``{tools}``: the crop tool's schema), as the LFPC
entry point's processor does (:func:`locus_train.easyr1.main.system_prompted`); the LFPC launcher passes the run's
(:func:`locus_train.easyr1.config.system_prompt_file`), and the report records its hash.

The processor is the checkpoint's own (EasyR1 loads it with ``AutoProcessor.from_pretrained(model_path)``), so its
pixel limits apply on top of ``--min-pixels``/``--max-pixels``, which must equal the recipe's ``data.*_pixels``.

By default no image is decoded: every length follows from numbers the dataset already stores. The rendered prompt
is tokenized once per distinct ``problem`` text with one image-pad token per image (special tokens are split off
before the BPE, so the surrounding text tokenizes the same as when expanded), and each image adds the merged-token
count of its size after ``process_image`` and the processor's ``smart_resize`` (:mod:`locus_reward.frames`, the one
home of both rules): ``(h / patch) * (w / patch) / merge**2``, with the processor's own patch size, merge size and
pixel limits. Sizes come from the metadata (full image: the ``answer`` JSON's width/height; cue:
``cue_width``/``cue_height``), or from the image headers when a file lacks those columns. ``--exact-processor`` runs
the processor on every row instead (the count above, done the slow way; the tests check both agree row by row).

Registered as ``locus-data measure-prompts``; also ``python -m locus_train.prompt_lengths``.
"""

import argparse
import io
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.json as pa_json
import pyarrow.parquet as pq
from tqdm import tqdm

from locus_agent.conversation import with_tool_schema
from locus_agent.processor import (
    ALLOW_FRAME_MISMATCH,
    ModelNotFound,
    check_checkpoint_frame,
    load_processor,
    pixel_limits,
    resolve_model,
)
from locus_data.config import SPLITS, split_path
from locus_data.errors import UserError
from locus_data.images import BadImage, check_image_size, open_image
from locus_data.outputs import check_output
from locus_data.problems import IMAGE_MARKER
from locus_data.rows import (
    check_dataset_dir,
    check_split_file,
    count_rows,
    open_parquet,
    read_batches,
    require_columns,
)
from locus_data.schema import ANSWER, CUE_HEIGHT, CUE_WIDTH, IMAGES, PROBLEM
from locus_reward.frames import easyr1_resize, smart_resize
from locus_reward.ground_truth import loads
from locus_train.images import process_image
from locus_train.prompt_report import PromptLengthReport, SplitLengths, report_path, sha256
from locus_train.prompting import chat_prompt, load_format_prompt, set_system_prompt
from locus_train.recipe import DEFAULT_FRAME, read_recipe, resolve


def prompt_length(
    processor: Any,
    problem: str,
    images: list[Any],
    format_prompt: str | None,
    min_pixels: int | None,
    max_pixels: int | None,
) -> int:
    """Tokens EasyR1 feeds the model for one row (the number its overlong filter compares with the budget)."""
    prompt = chat_prompt(processor, problem, format_prompt)
    pixels = [process_image(image, min_pixels, max_pixels) for image in images] or None
    inputs = processor(pixels, [prompt], add_special_tokens=False, return_tensors="np")
    return int(inputs["input_ids"].shape[-1])


def iter_rows(path: Path, batch_size: int = 64) -> Iterator[dict[str, Any]]:
    """``problem`` and ``images`` of each row, one record batch in memory at a time."""
    for batch in read_batches(path, [PROBLEM, IMAGES], batch_rows=batch_size):
        yield from batch.to_pylist()


@dataclass(frozen=True)
class ImageGeometry:
    """The processor settings that turn an image size into its number of image-pad tokens."""

    patch_size: int
    """side of one vision patch in pixels (14 for Qwen2.5-VL, 16 for Qwen3-VL)"""
    merge_size: int
    """patches merged per side into one token (2 for every Qwen-VL)"""
    min_pixels: int
    """the image processor's lower pixel limit for ``smart_resize`` (``size.shortest_edge``)"""
    max_pixels: int
    """the image processor's upper pixel limit for ``smart_resize`` (``size.longest_edge``)"""

    @classmethod
    def of(cls, processor: Any) -> "ImageGeometry":
        """Read the settings from the processor itself (its preprocessor config), as its ``__call__`` uses them."""
        image_processor = processor.image_processor
        if not getattr(image_processor, "do_resize", True):
            raise UserError(f"{type(image_processor).__name__} has do_resize off; use --exact-processor")
        min_pixels, max_pixels = pixel_limits(processor)
        return cls(int(image_processor.patch_size), int(image_processor.merge_size), min_pixels, max_pixels)

    def tokens(self, width: int, height: int, min_pixels: int | None, max_pixels: int | None) -> int:
        """Image-pad tokens of a stored ``width x height`` image: EasyR1's resize, then the processor's."""
        width, height = easyr1_resize(width, height, min_pixels, max_pixels)
        h_bar, w_bar = smart_resize(height, width, self.patch_size * self.merge_size, self.min_pixels, self.max_pixels)
        return (h_bar // self.patch_size) * (w_bar // self.patch_size) // self.merge_size**2


class PromptCounter:
    """Exact prompt lengths by arithmetic: text tokens once per distinct problem, image tokens from sizes."""

    def __init__(self, processor: Any, format_prompt: str | None, min_pixels: int | None, max_pixels: int | None):
        self.processor = processor
        self.format_prompt = format_prompt
        self.geometry = ImageGeometry.of(processor)
        self.image_token: str = processor.image_token
        self._text: dict[str, tuple[int, int]] = {}
        self._image = lru_cache(maxsize=None)(lambda w, h: self.geometry.tokens(w, h, min_pixels, max_pixels))

    def text_parts(self, problems: list[str]) -> list[tuple[int, int]]:
        """``(text tokens without the image pads, images)`` per problem; each distinct text is tokenized once."""
        new = list(dict.fromkeys(p for p in problems if p not in self._text))
        if new:
            prompts = [chat_prompt(self.processor, p, self.format_prompt) for p in new]
            ids = self.processor.tokenizer(prompts, add_special_tokens=False)["input_ids"]
            for problem, prompt, tokens in zip(new, prompts, ids):
                images = prompt.count(self.image_token)
                self._text[problem] = (len(tokens) - images, images)
        return [self._text[p] for p in problems]

    def lengths(self, problems: list[str], sizes: list[list[tuple[int, int]]], first_row: int = 0) -> list[int]:
        """Per-row lengths from problems and the ``(width, height)`` of each row's images in marker order."""
        out = []
        image = self._image
        for i, ((text, images), row_sizes) in enumerate(zip(self.text_parts(problems), sizes)):
            if images != len(row_sizes):
                raise UserError(
                    f"row {first_row + i}: the prompt has {images} image placeholder(s) but the row has "
                    f"{len(row_sizes)} image(s); EasyR1's processor rejects such a row"
                )
            for k, (width, height) in enumerate(row_sizes):
                # header arithmetic alone would pass a decompression bomb that EasyR1's loader then refuses mid-run
                check_image_size(width, height, f"row {first_row + i} image {k}")
                text += image(width, height)
            out.append(text)
        return out


SIZE_COLUMNS = (PROBLEM, ANSWER, CUE_WIDTH, CUE_HEIGHT)
"""what the arithmetic reads from a built dataset: images 0 and 1 are the full image and the cue"""


def _full_sizes(answers: list[str]) -> list[tuple[int, int]]:
    """``(width, height)`` of each row's stored full image, from its ``answer`` JSON."""
    # Arrow's JSON reader takes the two integers of 100K answers in C++; anything it cannot read as one
    # {width, height} object per line falls back to the answer parser, which names the bad row
    try:
        table = pa_json.read_json(
            io.BytesIO("\n".join(answers).encode("utf-8")),
            parse_options=pa_json.ParseOptions(
                explicit_schema=pa.schema([("width", pa.int64()), ("height", pa.int64())]),
                unexpected_field_behavior="ignore",
            ),
        )
        if table.num_rows == len(answers) and not table["width"].null_count and not table["height"].null_count:
            return list(zip(table["width"].to_pylist(), table["height"].to_pylist()))
    except (pa.ArrowInvalid, TypeError):  # TypeError: a null answer
        pass
    sizes = []
    for i, answer in enumerate(answers):
        try:
            gt = loads(answer)
        except ValueError as err:
            raise UserError(f"row {i}: {err}") from None
        sizes.append((gt.width, gt.height))
    return sizes


def _metadata_sizes(path: Path, rows: int) -> tuple[list[str], list[list[tuple[int, int]]]] | None:
    """Problems and image sizes from the stored sizes (no image bytes read); None: a layout they do not describe."""
    table = next(read_batches(path, SIZE_COLUMNS, limit=rows, batch_rows=None))
    problems = table.column(PROBLEM).to_pylist()
    cue_w, cue_h = table.column(CUE_WIDTH).to_pylist(), table.column(CUE_HEIGHT).to_pylist()
    markers = {p: p.count(IMAGE_MARKER) if p else 0 for p in set(problems)}
    if any(n not in (1, 2) for n in markers.values()):
        return None
    full = _full_sizes(table.column(ANSWER).to_pylist())
    sizes = []
    for problem, full_size, w, h in zip(problems, full, cue_w, cue_h):
        if markers[problem] == 1:
            sizes.append([full_size])
        elif w is None or h is None:
            return None  # a layout the metadata does not describe: every size from the headers instead
        else:
            sizes.append([full_size, (w, h)])
    return problems, sizes


def _header_batches(path: Path, rows: int):
    """Problems and image sizes read from each image's header (the pixels are never decoded)."""
    for batch in read_batches(path, [PROBLEM, IMAGES], limit=rows):
        problems = batch.column(PROBLEM).to_pylist()
        sizes = []
        for entries in batch.column(IMAGES).to_pylist():
            row_sizes = []
            for entry in entries or []:
                with open_image(entry, f"row {len(sizes)} image {len(row_sizes)}") as image:
                    row_sizes.append(image.size)
            sizes.append(row_sizes)
        yield problems, sizes


def measure_file(
    path: Path,
    processor: Any,
    format_prompt: str | None,
    min_pixels: int | None,
    max_pixels: int | None,
    limit: int | None = None,
    progress: bool = True,
    *,
    exact: bool = False,
) -> list[int]:
    """EasyR1's prompt length of every row (the first ``limit``): by arithmetic, or with ``exact`` by the processor."""
    parquet = open_parquet(path)
    total = parquet.metadata.num_rows
    total = min(total, limit) if limit is not None else total
    if exact:
        lengths: list[int] = []
        rows = tqdm(iter_rows(path), total=total, desc=f"measuring {path.name}", unit="row", disable=not progress)
        for row in rows:
            if len(lengths) == total:
                break
            try:
                lengths.append(
                    prompt_length(processor, row[PROBLEM], row[IMAGES], format_prompt, min_pixels, max_pixels)
                )
            except BadImage as err:
                raise UserError(f"row {len(lengths)}: {err}") from None
        return lengths
    counter = PromptCounter(processor, format_prompt, min_pixels, max_pixels)
    stored = _metadata_sizes(path, total) if set(SIZE_COLUMNS) <= set(parquet.schema_arrow.names) else None
    batches = [stored] if stored is not None else _header_batches(path, total)
    lengths = []
    for problems, sizes in batches:
        lengths += counter.lengths(problems, sizes, first_row=len(lengths))
    return lengths


def write_filtered(src: Path, dst: Path, keep: list[bool]) -> int:
    """Copy ``src`` to ``dst`` without the rows where ``keep`` is False; schema metadata is kept. Returns rows kept."""
    parquet = open_parquet(src)
    row_group_size = max(1, parquet.metadata.row_group(0).num_rows) if parquet.metadata.num_row_groups else 128
    dst.parent.mkdir(parents=True, exist_ok=True)
    start = kept = 0
    tmp = dst.with_name(f".{dst.name}.tmp")  # renamed into place once complete: a file at dst is always whole
    with pq.ParquetWriter(tmp, parquet.schema_arrow) as writer:
        for batch in read_batches(src, batch_rows=row_group_size):
            mask = pa.array(keep[start : start + batch.num_rows])
            start += batch.num_rows
            part = batch.filter(mask)
            kept += part.num_rows
            if part.num_rows:
                writer.write_batch(part, row_group_size=row_group_size)
    os.replace(tmp, dst)
    return kept


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", type=Path, help="folder holding train.parquet and val.parquet")
    parser.add_argument("--model", required=True, help="checkpoint (or hub id) whose processor EasyR1 will load")
    parser.add_argument(
        "--recipe",
        type=Path,
        help="training YAML (config/locus_*.yaml) whose format prompt, pixel limits and max_prompt_length are the "
        "defaults of the four flags below",
    )
    parser.add_argument(
        "--format-prompt",
        type=Path,
        help="the recipe's data.format_prompt jinja file ('none': measure the bare problem); one of --recipe or "
        "--format-prompt is required, since the format prompt adds hundreds of tokens",
    )
    parser.add_argument(
        "--system-prompt",
        type=Path,
        help="a system prompt file every prompt opens with ({tools}: the crop tool's schema), as an LFPC run trains "
        "with (locus_train.easyr1.config.system_prompt_file: lfpc.system_prompt, or the agent's own prompt)",
    )
    parser.add_argument(
        "--min-pixels",
        type=int,
        help=f"the recipe's data.min_pixels (default: --recipe's, else {DEFAULT_FRAME.min_pixels})",
    )
    parser.add_argument(
        "--max-pixels",
        type=int,
        help=f"the recipe's data.max_pixels (default: --recipe's, else {DEFAULT_FRAME.max_pixels})",
    )
    parser.add_argument("--max-prompt-length", type=int, help="the recipe's data.max_prompt_length (or --recipe)")
    parser.add_argument(
        ALLOW_FRAME_MISMATCH,
        action="store_true",
        help="measure even when the checkpoint's family (config.json model_type, patch size) is not --recipe's",
    )
    parser.add_argument("--splits", nargs="+", default=list(SPLITS), choices=SPLITS, help="splits to measure")
    parser.add_argument(
        "--report",
        type=Path,
        help=f"report JSON (default: {report_path('OUT').name} in the dataset, or in --write-filtered's OUT: "
        "where the launcher's preflight reads it)",
    )
    parser.add_argument(
        "--write-filtered",
        type=Path,
        metavar="OUT",
        help="also write OUT/<split>.parquet without the overlong rows (train on those files)",
    )
    parser.add_argument("--limit", type=int, help="measure only the first N >= 1 rows of each split (a quick look)")
    parser.add_argument(
        "--exact-processor",
        action="store_true",
        help="run the processor on every row's images (slow; the default computes the same count from stored sizes)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _fill_from_recipe(args: argparse.Namespace) -> None:
    """Unset flags take the recipe's values (explicit flags win), then the shipped recipes' pixel limits."""
    recipe = read_recipe(args.recipe) if args.recipe else None
    names = ("format_prompt", "min_pixels", "max_pixels", "max_prompt_length")
    vars(args).update(resolve({name: getattr(args, name) for name in names}, recipe, DEFAULT_FRAME.pixel_kwargs))
    if args.format_prompt is not None:
        args.format_prompt = Path(args.format_prompt)
    if args.max_prompt_length is None:
        raise UserError("give --max-prompt-length or --recipe")
    if args.max_prompt_length < 1:
        raise UserError(f"--max-prompt-length must be at least 1, got {args.max_prompt_length}")
    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit must be at least 1 (leave it out to measure every row), got {args.limit}")
    for flag, value in (("--min-pixels", args.min_pixels), ("--max-pixels", args.max_pixels)):
        if value is not None and value < 1:
            raise UserError(f"{flag} must be at least 1, got {value}")
    if args.min_pixels is not None and args.max_pixels is not None and args.min_pixels > args.max_pixels:
        raise UserError(f"--min-pixels {args.min_pixels} is larger than --max-pixels {args.max_pixels}")


def _check_inputs_and_outputs(args: argparse.Namespace) -> tuple[str | None, dict[str, Path], Path]:
    """The format prompt text, the split files and the report path, each checked before the model loads."""
    args.no_format_prompt = args.format_prompt is not None and str(args.format_prompt).lower() == "none"
    if args.no_format_prompt:
        args.format_prompt = None
    try:
        format_prompt = load_format_prompt(args.format_prompt)
    except FileNotFoundError as err:
        raise UserError(f"--format-prompt: {err}") from None
    dataset = check_dataset_dir(args.dataset)
    files = {split: check_split_file(split_path(dataset, split)) for split in args.splits}
    for path in files.values():  # another parquet: one line naming it, before the model loads
        require_columns(path, open_parquet(path).schema_arrow.names, (PROBLEM, IMAGES))
    empty = [str(path) for path in files.values() if count_rows(path) == 0]
    if empty:
        raise UserError(f"{', '.join(empty)} has no rows; rebuild the dataset (or measure other --splits)")
    inputs = [*files.values(), args.format_prompt, args.recipe]
    if args.write_filtered is not None:
        if args.limit is not None:  # known before anything is measured
            raise UserError("--write-filtered needs every row measured (no --limit)")
        if args.write_filtered.resolve() == args.dataset.resolve():
            raise UserError(
                f"--write-filtered {args.write_filtered} is the dataset itself; give another "
                "folder (the filtered copy must not overwrite the files it is read from)"
            )
        check_output(args.write_filtered, inputs, what="--write-filtered", expect="dir")
    target = args.report or report_path(args.write_filtered or args.dataset)
    check_output(target, inputs, what="--report", suffixes=(".json",))
    return format_prompt, files, target


def run(args: argparse.Namespace) -> int:
    """Measure, print the distribution, write the report (and filtered copies). Exit 1 if rows are overlong."""
    try:
        _fill_from_recipe(args)
    except UserError as err:
        print(f"measure-prompts: error: {err}", file=sys.stderr)
        return 2
    try:
        format_prompt, files, target = _check_inputs_and_outputs(args)
    except UserError as err:
        print(f"measure-prompts: error: {err}", file=sys.stderr)
        return 2
    if args.system_prompt is not None and not args.system_prompt.is_file():
        print(f"measure-prompts: error: --system-prompt {args.system_prompt} not found", file=sys.stderr)
        return 2
    try:
        model_dir = resolve_model(args.model, download=True)
        if args.recipe is not None and not args.allow_frame_mismatch:
            # a recipe of the other family measures another chat template and image grid: numbers, but wrong ones
            frame = read_recipe(args.recipe).coord_frame
            check_checkpoint_frame(model_dir, frame, "coord_frame", where=f"--recipe {args.recipe}: ")
        processor = load_processor(model_dir)
    except (ModelNotFound, UserError, ValueError) as err:  # ValueError: a checkpoint without a Qwen-VL processor
        print(f"measure-prompts: error: {err}", file=sys.stderr)
        return 2
    if args.recipe is None and args.format_prompt is None and not args.no_format_prompt:
        # the format prompt is hundreds of tokens: measuring without it passes prompts training will find overlong
        print(
            "measure-prompts: error: give --recipe (the training YAML) or --format-prompt FILE; "
            "--format-prompt none measures the bare problem text",
            file=sys.stderr,
        )
        return 2
    system = None
    if args.system_prompt is not None:  # the chat template the LFPC entry point gives EasyR1's dataset
        system = with_tool_schema(args.system_prompt.read_text(encoding="utf-8"))
        set_system_prompt(processor, system)
    report = PromptLengthReport(
        model=str(args.model),
        processor_class=type(processor).__name__,
        format_prompt=str(args.format_prompt) if args.format_prompt else None,
        format_prompt_sha256=sha256(format_prompt),
        min_pixels=args.min_pixels,
        max_pixels=args.max_pixels,
        max_prompt_length=args.max_prompt_length,
        limit=args.limit,
        method="processor" if args.exact_processor else "arithmetic",
        system_prompt=str(args.system_prompt) if args.system_prompt else None,
        system_prompt_sha256=sha256(system),
    )
    overlong = 0
    for split, path in files.items():
        try:
            lengths = measure_file(
                path,
                processor,
                format_prompt,
                args.min_pixels,
                args.max_pixels,
                args.limit,
                not args.quiet,
                exact=args.exact_processor,
            )
        except (UserError, OSError, pa.ArrowException) as err:  # unreadable file, bad answer cell, wrong markers
            print(f"measure-prompts: error: {path}: {err}", file=sys.stderr)
            return 2
        summary = report.splits[split] = SplitLengths.of(path.resolve(), lengths, args.max_prompt_length)
        overlong += summary.overlong
        print(
            f"{split}: {summary.rows} rows, prompt tokens min {summary.min} / p50 {summary.p50} / "
            f"p99 {summary.p99} / max {summary.max}; {summary.overlong} over {args.max_prompt_length}"
        )
        if args.write_filtered is not None:
            keep = [n <= args.max_prompt_length for n in lengths]
            kept = write_filtered(path, args.write_filtered / path.name, keep)
            report.filtered = str(args.write_filtered.resolve())
            print(f"wrote {args.write_filtered / path.name}: {kept} of {len(keep)} rows")
    report.write(target)
    print(f"wrote {target}")
    # overlong rows left in the data would be right-truncated by EasyR1 (image tokens cut: the run crashes)
    return 1 if overlong and args.write_filtered is None else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="locus-data measure-prompts", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
