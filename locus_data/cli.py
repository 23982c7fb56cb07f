"""``locus-data``: build, validate, inspect and synthesize LOCUS cue-search datasets and VQA manifests.

User mistakes (missing files, bad config keys, malformed annotations) end with one ``locus-data: error: ...`` line
and exit status 2; a failed validation exits 1.

Commands owned by other LOCUS packages (``measure-prompts`` from :mod:`locus_train`; ``annotate``, ``export-sft``,
``export-text-cue`` from :mod:`locus_baselines`) are registered as ``locus_data.commands`` entry points in
``setup.py``: this package dispatches to them by name and never imports the packages built on top of it.
Each command imports its module only when it runs, so ``locus-data --help`` and the light commands start fast.
"""

import argparse
import importlib.metadata
import json
import os
import sys
from pathlib import Path

from locus_data.config import SPLITS, load_config, split_path
from locus_data.errors import UserError


COMMAND_GROUP = "locus_data.commands"


def _build(args: argparse.Namespace) -> int:
    from locus_data.build import Sources, build

    cfg = load_config(args.config, args.overrides)
    sources = Sources.from_args(args.coco_root, args.annotations, args.images)
    stats = build(cfg, sources, args.out, workers=args.workers, resume=args.resume, progress=not args.quiet)
    if stats:
        rows = {split: s["rows"] for split, s in stats["splits"].items()}
        print(f"wrote {args.out}: {rows}; see {args.out}/stats.md")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from locus_data import vqa
    from locus_data.validate import validate

    if vqa.is_manifest(args.dataset):  # a manifest is a file (or a folder holding manifest.jsonl), a dataset a folder
        report = vqa.check_manifest(args.dataset, decode=args.decode, progress=not args.quiet)
    else:
        report = validate(args.dataset, decode=args.decode, progress=not args.quiet, num_images=args.images)
    print(report.summary())
    return 0 if report.ok else 1


def _stats(args: argparse.Namespace) -> int:
    from locus_data.stats import compute_stats, to_markdown

    out = Path(args.dataset)
    if not any(split_path(out, split).is_file() for split in SPLITS):
        raise UserError(f"{out} has no train.parquet or val.parquet")
    old = json.loads((out / "stats.json").read_text()) if (out / "stats.json").is_file() else {}
    stats = compute_stats(out, old.get("config"), old.get("build"))
    print(json.dumps(stats, indent=2) if args.json else to_markdown(stats), end="" if not args.json else "\n")
    return 0


def _preview(args: argparse.Namespace) -> int:
    from locus_data.preview import preview, preview_manifest
    from locus_data.vqa import is_manifest

    if is_manifest(args.dataset):
        path = preview_manifest(args.dataset, n=args.n, out=args.out, seed=args.seed)
    else:
        path = preview(args.dataset, n=args.n, split=args.split, out=args.out, seed=args.seed)
    print(f"wrote {path}")
    return 0


def _synth(args: argparse.Namespace) -> int:
    from locus_data.synth import synth

    path = synth(args.out, args.num_images, args.seed, progress=not args.quiet)
    print(f"wrote {args.num_images} images and {path}")
    return 0


def _synth_vqa(args: argparse.Namespace) -> int:
    from locus_data.synth_vqa import synth_vqa

    path = synth_vqa(args.out, args.num_images, args.seed, overwrite=args.overwrite, progress=not args.quiet)
    print(f"wrote {args.num_images} questions to {path}; see {path.parent / 'preview.png'}")
    return 0


def plugin_commands() -> dict[str, importlib.metadata.EntryPoint]:
    """``{name: entry point}`` of the commands other LOCUS packages register (each owns its own parser)."""
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=COMMAND_GROUP)}


def parser(with_summaries: bool = False) -> argparse.ArgumentParser:
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
        "fields, unique ids, images present, answer letters within the choices, boxes nested and inside the image. "
        "Exits 1 with a per-problem report when anything is wrong.",
    )
    v.add_argument("dataset", help="folder holding train.parquet and val.parquet, or a VQA manifest")
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
        "manifest, the image with its nested boxes next to the smallest box enlarged, with question and answer.",
    )
    pv.add_argument("dataset", help="folder holding train.parquet and val.parquet, or a VQA manifest")
    pv.add_argument("--n", type=int, default=12, help="examples to draw (default 12)")
    pv.add_argument("--split", default="train", choices=SPLITS, help="split to draw from (datasets only)")
    pv.add_argument("--seed", type=int, default=0, help="which rows to draw")
    pv.add_argument("--out", help="PNG path (default DATASET/preview.png; beside a manifest for manifests)")
    pv.set_defaults(func=_preview)

    sy = sub.add_parser(
        "synth",
        help="write a small synthetic COCO-format dataset",
        description="Draw textured scenes with many small, overlapping shapes and write them in the COCO 2014 "
        "layout (annotations/instances_train2014.json, train2014/*.jpg), usable with --coco-root.",
    )
    sy.add_argument("--out", required=True, help="output folder")
    sy.add_argument("--num-images", type=int, default=60, help="images to draw (default 60)")
    sy.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
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

    for name, entry in sorted(plugin_commands().items()):
        # the summary is the command module's first docstring line, read only for the top-level --help
        summary = _summary(entry) if with_summaries else entry.module.split(".")[0]
        sub.add_parser(name, help=f"{summary} (see locus-data {name} --help)", add_help=False)
    return p


def _summary(entry: importlib.metadata.EntryPoint) -> str:
    doc = sys.modules[entry.load().__module__].__doc__ or ""
    return doc.split("\n", 1)[0].split(": ", 1)[-1].rstrip(".")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        plugins = plugin_commands()
        if argv and argv[0] in plugins:
            return plugins[argv[0]].load()(argv[1:])
        args = parser(with_summaries=not argv or argv[0] in ("-h", "--help")).parse_args(argv)
        return args.func(args)
    except UserError as err:
        print(f"locus-data: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("locus-data: interrupted (a build continues with --resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
