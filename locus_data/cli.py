"""``locus-data``: build, validate, inspect and synthesize LOCUS cue-search datasets and VQA manifests; convert
public VQA sets to manifests and export manifests for LFPC training on EasyR1.

User mistakes (missing files, bad config keys, malformed annotations) end with one ``locus-data: error: ...`` line
and exit status 2; a failed validation exits 1.

Commands owned by other LOCUS packages (``measure-prompts`` from :mod:`locus_train`; ``annotate``, ``export-sft``,
``export-text-cue`` from :mod:`locus_baselines`) are registered as ``locus_data.commands`` entry points in
``setup.py``: this package dispatches to them by name and never imports the packages built on top of it.
Each command imports its module only when it runs, so ``locus-data --help`` and the light commands start fast.
"""

import argparse
import atexit
import gc
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from locus_data.config import SPLITS, load_config
from locus_data.errors import UserError, quiet_on_broken_pipe


if TYPE_CHECKING:
    import importlib.metadata


COMMAND_GROUP = "locus_data.commands"


def _build(args: argparse.Namespace) -> int:
    from locus_data.build import Sources, build

    # the build does no linear algebra: numpy is loaded only because pyarrow loads it, and OpenBLAS would start a
    # thread per core for it, which takes ~0.08 s of CPU from the decoding workers (measured on 2 cores)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    cfg = load_config(args.config, args.overrides)
    sources = Sources.from_args(args.coco_root, args.annotations, args.images)
    stats = build(cfg, sources, args.out, workers=args.workers, resume=args.resume, progress=not args.quiet)
    if stats:
        rows = {split: s["rows"] for split, s in stats["splits"].items()}
        print(f"wrote {args.out}: {rows}; see {args.out}/stats.md")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from locus_data import vqa
    from locus_data.lfpc_export import check_export, is_export
    from locus_data.validate import validate

    if is_export(args.dataset):  # an LFPC export: one view per row, the original named by path
        report = check_export(args.dataset, decode=args.decode, progress=not args.quiet)
    elif vqa.is_manifest(
        args.dataset
    ):  # a manifest is a file (or a folder holding manifest.jsonl), a dataset a folder
        report = vqa.check_manifest(args.dataset, decode=args.decode, progress=not args.quiet)
    else:
        report = validate(args.dataset, decode=args.decode, progress=not args.quiet, num_images=args.images)
    print(report.summary())
    return 0 if report.ok else 1


def _stats(args: argparse.Namespace) -> int:
    from locus_data.lfpc_export import is_export
    from locus_data.rows import check_dataset_dir, split_files
    from locus_data.stats import compute_stats, to_markdown

    out = check_dataset_dir(args.dataset)
    split_files(out)  # a folder without split files, or with folders in their place, is named as such
    if is_export(out):
        raise UserError(f"{out} is an LFPC export: its counts are in {out / 'export.json'} (stats is for cue search)")
    old = _previous_stats(out / "stats.json")
    stats = compute_stats(out, old.get("config"), old.get("build"))
    empty = [split for split, s in stats["splits"].items() if not s["rows"]]
    if empty:
        raise UserError(f"{out}: {' and '.join(empty)} split has no rows; rebuild the dataset (locus-data build)")
    print(json.dumps(stats, indent=2) if args.json else to_markdown(stats), end="" if not args.json else "\n")
    return 0


def _previous_stats(path: Path) -> dict:
    # the build's own counters live only in stats.json; a damaged copy loses them, not the recomputed table
    if not path.is_file():
        return {}
    try:
        old = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        print(f"locus-data: note: {path} is not readable JSON ({err}); build counters left out", file=sys.stderr)
        return {}
    return old if isinstance(old, dict) else {}


def _preview(args: argparse.Namespace) -> int:
    from locus_data.lfpc_export import is_export
    from locus_data.preview import preview, preview_export, preview_manifest
    from locus_data.vqa import is_manifest

    if is_export(args.dataset):
        path = preview_export(args.dataset, n=args.n, split=args.split, out=args.out, seed=args.seed)
    elif is_manifest(args.dataset):
        path = preview_manifest(args.dataset, n=args.n, out=args.out, seed=args.seed)
    else:
        path = preview(args.dataset, n=args.n, split=args.split, out=args.out, seed=args.seed)
    print(f"wrote {path}")
    return 0


def _synth(args: argparse.Namespace) -> int:
    from locus_data.synth import synth

    path = synth(args.out, args.num_images, args.seed, progress=not args.quiet, overwrite=args.overwrite)
    print(f"wrote {args.num_images} images and {path}")
    return 0


def _synth_vqa(args: argparse.Namespace) -> int:
    from locus_data.synth_vqa import synth_vqa

    path = synth_vqa(args.out, args.num_images, args.seed, overwrite=args.overwrite, progress=not args.quiet)
    print(f"wrote {args.num_images} questions to {path}; see {path.parent / 'preview.png'}")
    return 0


def _export_lfpc(args: argparse.Namespace) -> int:
    from locus_data.lfpc_export import export_lfpc

    info = export_lfpc(
        args.manifest,
        args.out,
        val=args.val,
        val_manifest=args.val_manifest,
        view=args.view,
        seed=args.seed,
        require_boxes=args.require_boxes,
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    rows, selected = info["rows"], sum(info["selected_views"].values())
    print(
        f"wrote {args.out}/train.parquet ({rows['train']} rows) and val.parquet ({rows['val']} rows); "
        f"{selected} show a selected view, {sum(rows.values()) - selected} the original; see {args.out}/export.json"
    )
    if args.view == "selected" and not selected:
        print(
            "note: no row has a view_image (run locus-data select-resolution first for Stage I): "
            "every row shows its original image",
            file=sys.stderr,
        )
    return 0


def _convert_vqa(args: argparse.Namespace) -> int:
    from locus_data.vqa_sources import convert

    report = convert(
        args.format,
        args.input,
        args.out,
        args.images,
        limit=args.limit,
        skip_bad_images=args.skip_bad_images,
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    print(report.summary())
    return 0


def _add_boxes(args: argparse.Namespace) -> int:
    from locus_data.vqa_boxes import add_boxes

    path, annotated, written = add_boxes(
        args.manifest, args.boxes, args.out, keep_unboxed=args.keep_unboxed, overwrite=args.overwrite
    )
    print(
        f"wrote {written} questions to {path} ({annotated} with nested boxes); check them: locus-data preview {path}"
    )
    return 0


def _merge_vqa(args: argparse.Namespace) -> int:
    from locus_data.vqa import merge_manifests

    path, count = merge_manifests(args.manifests, args.out, overwrite=args.overwrite, equal=args.equal, seed=args.seed)
    print(f"wrote {count} questions from {len(args.manifests)} manifests to {path}")
    return 0


def plugin_commands() -> dict[str, "importlib.metadata.EntryPoint"]:
    """``{name: entry point}`` of the commands other LOCUS packages register (each owns its own parser)."""
    import importlib.metadata  # ~40 ms with the scan: paid only by plugin commands and the top-level --help

    return {ep.name: ep for ep in importlib.metadata.entry_points(group=COMMAND_GROUP)}


def builtin_parser() -> tuple[argparse.ArgumentParser, "argparse._SubParsersAction"]:
    """The parser of this package's own commands and its subcommand action (no entry-point scan)."""
    p = argparse.ArgumentParser(
        prog="locus-data", description="Build, validate, inspect and synthesize LOCUS cue-search datasets."
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    b = sub.add_parser(
        "build",
        help="build train/val.parquet from COCO-format annotations",
        description="Build OUT/train.parquet and OUT/val.parquet (plus stats.json, stats.md, config.yaml) from "
        "COCO-format object boxes. The data config is the dataclass defaults <- --config YAML <- key=value.",
        epilog="example: locus-data build --config config/data/locus_default.yaml --coco-root /data/coco "
        "--out data/locus_cue num_train=2000 num_val=100",
    )
    b.add_argument("--config", help="data config YAML (config/data/*.yaml); defaults to the paper setting")
    b.add_argument("--coco-root", help="folder with annotations/instances_train2014.json and train2014/")
    b.add_argument("--annotations", help="any COCO-format detection file (LVIS, Objects365, your own); needs --images")
    b.add_argument("--images", help="folder holding the images the annotation file names")
    b.add_argument("--out", required=True, help="output folder")
    b.add_argument(
        "--workers",
        type=int,
        default=max(1, (os.cpu_count() or 2) - 1),
        help="decoding processes (0: decode in the main process); rows do not depend on it (default: CPUs - 1)",
    )
    b.add_argument("--resume", action="store_true", help="continue an interrupted build in --out")
    b.add_argument("--quiet", action="store_true", help="no progress bars")
    b.add_argument("overrides", nargs="*", metavar="key=value", help="override data config keys, e.g. num_train=2000")
    b.set_defaults(func=_build)

    v = sub.add_parser(
        "validate",
        help="check a built dataset or a VQA manifest (launcher preflight)",
        description="Check columns and types, prompts, answers and image sizes of every row (image headers only), "
        "cue safety for Qwen2.5-VL and Qwen3-VL, train/val image disjointness and the configured bin counts. "
        "Given a VQA manifest (a .jsonl/.parquet file, or a folder holding manifest.jsonl), check every row: "
        "fields, unique ids, images present, answer letters within the choices, boxes nested and inside the image, "
        "a view_image no larger than its original. Given an LFPC export (locus-data export-lfpc), check every row's "
        "view bytes, original path, ground truth and sizes. Exits 1 with a per-problem report when anything is wrong.",
    )
    v.add_argument("dataset", help="folder holding train.parquet and val.parquet, a VQA manifest, or an LFPC export")
    v.add_argument(
        "--images",
        type=int,
        choices=(1, 2),
        default=2,
        help="images per row: 2 for cue search (default), 1 for a text-cue export (not used for manifests)",
    )
    v.add_argument(
        "--decode",
        type=int,
        default=64,
        metavar="N",
        help="also fully decode the images of N rows per split (or manifest), spread evenly (-1: all; default 64)",
    )
    v.add_argument("--quiet", action="store_true", help="no progress bars")
    v.set_defaults(func=_validate)

    s = sub.add_parser("stats", help="print Table-9-style statistics", description="Recompute and print statistics.")
    s.add_argument("dataset", help="folder holding train.parquet and val.parquet")
    s.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    s.set_defaults(func=_stats)

    pv = sub.add_parser(
        "preview",
        help="write a PNG grid of examples",
        description="Draw N examples: the full image with the ground-truth box next to its cue; for a VQA "
        "manifest, the image with its nested boxes next to the smallest box enlarged, with question and answer; "
        "for an LFPC export, the view the model is shown with the boxes mapped into it.",
    )
    pv.add_argument("dataset", help="folder holding train.parquet and val.parquet, a VQA manifest, or an LFPC export")
    pv.add_argument("--n", type=int, default=12, help="examples to draw (default 12)")
    pv.add_argument("--split", default="train", choices=SPLITS, help="split to draw from (datasets and exports)")
    pv.add_argument("--seed", type=int, default=0, help="which rows to draw")
    pv.add_argument("--out", help="PNG path (default DATASET/preview.png; beside a manifest for manifests)")
    pv.set_defaults(func=_preview)

    sy = sub.add_parser(
        "synth",
        help="write a small synthetic COCO-format dataset",
        description="Draw textured scenes with many small, overlapping shapes and write them in the COCO 2014 "
        "layout (annotations/instances_train2014.json, train2014/*.jpg), usable with --coco-root.",
    )
    sy.add_argument("--out", required=True, help="output folder (refused when not empty, unless --overwrite)")
    sy.add_argument("--num-images", type=int, default=60, help="images to draw, at least 1 (default 60)")
    sy.add_argument("--seed", type=int, default=0, help="random seed, non-negative (default 0)")
    sy.add_argument("--overwrite", action="store_true", help="write into a non-empty --out (same names replaced)")
    sy.add_argument("--quiet", action="store_true", help="no progress bar")
    sy.set_defaults(func=_synth)

    sv = sub.add_parser(
        "synth-vqa",
        help="write synthetic high-resolution VQA questions (a VQA manifest)",
        description="Draw 3-4K scenes whose answer is a 1-px pattern in a small glyph on a coloured card: legible "
        "in the original and in a crop, gone at 1,024 visual tokens. Writes OUT/manifest.jsonl, OUT/images/*.jpg "
        "and OUT/preview.png; nested boxes (glyph, card, region) in original pixels.",
        epilog="example: locus-data synth-vqa --out data/synth_vqa --num-images 200 --seed 0",
    )
    sv.add_argument("--out", required=True, help="output folder (refused when not empty, unless --overwrite)")
    sv.add_argument("--num-images", type=int, default=50, help="questions to draw, one image each (default 50)")
    sv.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    sv.add_argument("--overwrite", action="store_true", help="replace this command's files in a non-empty --out")
    sv.add_argument("--quiet", action="store_true", help="no progress bar")
    sv.set_defaults(func=_synth_vqa)

    ex = sub.add_parser(
        "export-lfpc",
        help="write EasyR1 train/val.parquet for LFPC from a VQA manifest",
        description="Write OUT/train.parquet, OUT/val.parquet and OUT/export.json for LFPC's multi-turn training: "
        "per question, problem = <image> + the question, images = ONE {bytes: the view the model is shown, path: "
        "the absolute path of the original crops are cut from}, answer = the LFPC ground-truth JSON (answer, "
        "choices, nested boxes in original pixels, original and view sizes), plus metadata columns.",
        epilog="examples: locus-data export-lfpc data/stage1_selected/manifest.jsonl --out data/lfpc_stage1   "
        "locus-data export-lfpc data/visualprobe_boxed.jsonl --out data/lfpc_stage2 --view original",
    )
    ex.add_argument("manifest", help="the VQA manifest (after locus-data select-resolution for Stage I)")
    ex.add_argument("--out", required=True, help="output folder (an export in it is replaced only with --overwrite)")
    held = ex.add_mutually_exclusive_group()
    held.add_argument(
        "--val",
        type=int,
        help="validation questions drawn from MANIFEST, whole images at a time (default: 10%%, 1 to 64)",
    )
    held.add_argument("--val-manifest", help="take val.parquet from this manifest instead (no id or image shared)")
    ex.add_argument(
        "--view",
        default="selected",
        help="selected: show each row's view_image where resolution selection added one, else the original "
        "(default; Stage I); original: always the original, ignoring view_image (Stage II's default data path)",
    )
    ex.add_argument("--seed", type=int, default=0, help="seed of the train/val draw (default 0)")
    ex.add_argument(
        "--require-boxes", action="store_true", help="refuse questions without nested boxes (Stage II data)"
    )
    ex.add_argument("--overwrite", action="store_true", help="replace an export in --out")
    ex.add_argument("--quiet", action="store_true", help="no progress bars")
    ex.set_defaults(func=_export_lfpc)

    cv = sub.add_parser(
        "convert-vqa",
        help="convert a public VQA set (PixelReasoner, Chain-of-Focus, ThinkLite-VL, VisualProbe) to a manifest",
        description="Read a public VQA set in its published format and write a VQA manifest: image, question, "
        "answer (options written in the question become choices and the answer their letter). One image per "
        "question; video and multi-image rows are skipped and counted. See locus_data/vqa_sources.py for each "
        "format's fields and the sources they were verified against.",
        epilog="example: locus-data convert-vqa --format pixelreasoner PixelReasoner-RL-Data/release.parquet "
        "--images PixelReasoner-RL-Data/images --out data/pixelreasoner.jsonl",
    )
    cv.add_argument("input", help="the set's question file: .parquet (or a folder of shards), .json or .jsonl")
    cv.add_argument("--format", required=True, help="pixelreasoner, cof, thinklite or visualprobe")
    cv.add_argument(
        "--images",
        help="the folder the set's image paths are relative to (pixelreasoner: the unpacked images.zip; cof: its "
        "image root; visualprobe: BASE_IMAGE_DIR); thinklite: where its embedded images are written "
        "(default: images/ beside the manifest)",
    )
    cv.add_argument("--out", required=True, help="manifest to write (.jsonl), or a folder to hold manifest.jsonl")
    cv.add_argument("--limit", type=int, help="stop after N questions (a quick trial)")
    cv.add_argument(
        "--skip-bad-images", action="store_true", help="skip rows whose image is missing or unreadable (counted)"
    )
    cv.add_argument("--overwrite", action="store_true", help="replace an existing manifest")
    cv.add_argument("--quiet", action="store_true", help="no progress bar")
    cv.set_defaults(func=_convert_vqa)

    mv = sub.add_parser(
        "merge-vqa",
        help="combine VQA manifests into one (ids must stay unique)",
        description="Write the questions of MANIFEST... in order into OUT, image paths rewritten relative to OUT's "
        "folder (or absolute), so manifests from different folders combine; e.g. Stage I's sources into one "
        "manifest before resolution selection.",
    )
    mv.add_argument("manifests", nargs="+", metavar="MANIFEST", help="manifests to combine, in order")
    mv.add_argument("--out", required=True, help="manifest to write (.jsonl)")
    mv.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    mv.add_argument(
        "--equal",
        action="store_true",
        help="as many questions from each manifest as the smallest holds (a seeded draw; Table 8's 1:1 Mix Data)",
    )
    mv.add_argument("--seed", type=int, default=0, help="seed of the --equal draw (default 0)")
    mv.set_defaults(func=_merge_vqa)

    ab = sub.add_parser(
        "add-boxes",
        help="set nested GT boxes on manifest questions from an annotation file (Stage II data)",
        description='Read BOXES, JSON lines of {"id": ..., "boxes": [[x1, y1, x2, y2], ...]} in original-image '
        "pixels, in any order (sorted smallest first here), and write OUT: MANIFEST with those boxes set, each box "
        "checked inside its image and inside the next. Questions without annotation are left out unless "
        "--keep-unboxed.",
        epilog="example: locus-data add-boxes data/visualprobe.jsonl --boxes boxes.jsonl "
        "--out data/visualprobe_boxed.jsonl",
    )
    ab.add_argument("manifest", help="the VQA manifest the ids refer to")
    ab.add_argument("--boxes", required=True, help="annotation file: JSON lines of id and boxes")
    ab.add_argument("--out", required=True, help="manifest to write (.jsonl)")
    ab.add_argument("--keep-unboxed", action="store_true", help="keep questions the file does not annotate")
    ab.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    ab.set_defaults(func=_add_boxes)

    return p, sub


def add_plugin_commands(
    sub: "argparse._SubParsersAction", plugins: dict[str, "importlib.metadata.EntryPoint"], with_summaries: bool
) -> None:
    """List the plugin commands beside the built-in ones (each parses its own arguments when it runs)."""
    for name, entry in sorted(plugins.items()):
        # the summary is the command module's first docstring line, read only for the top-level --help
        summary = _summary(entry) if with_summaries else entry.module.split(".")[0]
        sub.add_parser(name, help=f"{summary} (see locus-data {name} --help)", add_help=False)


def _summary(entry: "importlib.metadata.EntryPoint") -> str:
    doc = sys.modules[entry.load().__module__].__doc__ or ""
    return doc.split("\n", 1)[0].split(": ", 1)[-1].rstrip(".")


def _freeze_heap_at_exit() -> None:
    """Have the interpreter's exit skip its final garbage collections (built-in commands only).

    At exit the interpreter runs full collections over every object still alive: ~0.07 s of a ~3 s build once
    pyarrow and PIL are loaded (measured on 2 cores; ~0.9 s once torch is loaded). An atexit handler freezes the heap
    first (:func:`gc.freeze`), which takes those objects out of the collector's sight; the rest of the shutdown is
    unchanged (the other atexit handlers run, files are flushed and closed). What it skips is finalizing objects
    caught in reference cycles: the built-in commands close every file and writer they open, so nothing of theirs
    waits on that; plugin commands (other packages, third-party clients) are left the interpreter's usual exit.
    """
    atexit.unregister(gc.freeze)  # registered once, however often main runs in one process (tests)
    atexit.register(gc.freeze)


@quiet_on_broken_pipe
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        p, sub = builtin_parser()
        # a built-in command skips the entry-point scan, which would add ~40 ms to the start of every build
        if not argv or argv[0] not in sub.choices:
            plugins = plugin_commands()
            if argv and argv[0] in plugins:
                return plugins[argv[0]].load()(argv[1:])
            # the top-level --help or a command nobody provides: argparse lists every command
            add_plugin_commands(sub, plugins, with_summaries=not argv or argv[0] in ("-h", "--help"))
        args = p.parse_args(argv)
        _freeze_heap_at_exit()
        return args.func(args)
    except UserError as err:
        print(f"locus-data: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("locus-data: interrupted (a build continues with --resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
