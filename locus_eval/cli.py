"""``locus-eval``: evaluate a merged LOCUS checkpoint (proxy task, benchmarks, attention, training curves).

Every subcommand imports its heavy dependencies (torch, transformers, vllm, matplotlib) only when it runs, so
``locus-eval <command> --help`` works anywhere.
"""

import argparse
import dataclasses
import json
import shlex
import sys
from pathlib import Path

from locus_agent.processor import (
    ALLOW_FRAME_MISMATCH,
    ModelNotFound,
    check_checkpoint_frame,
    checkpoint_coord_frame,
    resolve_model,
)
from locus_data.errors import UserError
from locus_data.outputs import check_output
from locus_eval.runner import GenerationConfig
from locus_reward.frames import COORD_FRAMES
from locus_reward.options import FrameOptions, PixelLimits
from locus_train.recipe import DEFAULT_FRAME, read_recipe, resolve


class _Unset:
    """A flag not given: filled from ``--recipe``, else the shipped recipes' value (``none`` turns a limit off)."""

    def __repr__(self) -> str:
        return "unset"


UNSET = _Unset()  # not a string, so argparse does not run it through the flag's type
# benchmarks are ordinary full-image inference (HR-Bench is 4K/8K): EasyR1's default limits, not the cue-data cap
BENCH_FRAME = FrameOptions()


def _optional_int(text: str) -> int | None:
    if text.lower() in ("none", "null"):
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'none', got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'none', got {value}")
    return value


def at_least(minimum: int):
    """An argparse type: an integer >= ``minimum`` (``--limit 0`` or ``--batch-size -1`` are refused, not guessed)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return parse


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1) (0: no smoothing), got {value}")
    return value


def _add_mismatch_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        ALLOW_FRAME_MISMATCH,
        action="store_true",
        help="run even when the checkpoint's family (config.json model_type, patch size) writes boxes in another "
        "frame than --coord-frame/--recipe",
    )


def _add_recipe_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--recipe",
        type=Path,
        default=None,
        help="training YAML (config/locus_*.yaml) whose coord_frame, data pixel limits and format prompt become the "
        "defaults, so evaluation sees what training saw",
    )


def _add_frame_arg(parser: argparse.ArgumentParser, help: str = "how the model writes boxes") -> None:
    # unset until apply_recipe fills it from --recipe (or the command's fallback)
    parser.add_argument("--coord-frame", choices=COORD_FRAMES, default=UNSET, help=help)


# the flags named for the recipe settings they stand for (--prompt is the recipe's data.format_prompt)
RECIPE_FLAGS = {
    "coord_frame": "coord_frame",
    "min_pixels": "min_pixels",
    "max_pixels": "max_pixels",
    "prompt": "format_prompt",
}


def apply_recipe(args: argparse.Namespace) -> None:
    """Fill flags left unset from ``--recipe``, else from the shipped recipes' values; explicit flags win."""
    recipe = read_recipe(args.recipe) if getattr(args, "recipe", None) else None
    # the shipped recipes' limits; the frame must be given (a guessed frame scores silently wrong)
    fallback = {**DEFAULT_FRAME.limits.pixel_kwargs, "format_prompt": None}
    if args.command == "score":
        fallback = {}  # still unset: cmd_score takes the run's own values
        if recipe is not None and args.think_prefilled is None:
            args.think_prefilled = recipe.think_prefilled
    if args.command == "bench":
        fallback = dataclasses.asdict(BENCH_FRAME)
        # without --recipe the checkpoint says how it writes boxes (a Qwen3-VL read in pixels scores silently wrong)
        model_dir = _local_model(args.model)
        fallback["coord_frame"] = (checkpoint_coord_frame(model_dir) if model_dir else None) or fallback["coord_frame"]
    flags = {setting: getattr(args, flag) for flag, setting in RECIPE_FLAGS.items() if hasattr(args, flag)}
    args.frame_source = "--coord-frame" if flags.get("coord_frame", UNSET) is not UNSET else None
    if args.frame_source is None and recipe is not None:
        args.frame_source = f"the coord_frame of --recipe {args.recipe}"
    args.recipe_frame = recipe.coord_frame if recipe is not None else None
    resolved = resolve(flags, recipe, fallback, unset=UNSET)
    for flag, setting in RECIPE_FLAGS.items():
        if setting in resolved:
            setattr(args, flag, resolved[setting])
    if getattr(args, "coord_frame", "") is UNSET:
        raise ValueError("give --coord-frame or --recipe")


def _add_generation_args(
    parser: argparse.ArgumentParser, max_new_tokens: int, pixels: PixelLimits = DEFAULT_FRAME.limits
) -> None:
    parser.add_argument("--model", required=True, help="merged checkpoint directory (HF format)")
    parser.add_argument("--out", required=True, type=Path, help="run directory (resumed if it exists)")
    parser.add_argument("--backend", choices=("vllm", "hf"), default="vllm", help="vllm on GPUs, hf on CPU")
    parser.add_argument(
        "--max-new-tokens", type=at_least(1), default=max_new_tokens, help="generation budget per answer"
    )
    parser.add_argument("--batch-size", type=at_least(1), default=8, help="prompts per generate call")
    _add_pixel_args(parser, "", pixels)
    parser.add_argument("--limit", type=at_least(1), default=None, help="only the first N examples (default: all)")
    _add_mismatch_arg(parser)
    parser.add_argument("--tensor-parallel-size", type=int, default=1, help="vllm: GPUs per model")
    parser.add_argument("--gpu-memory-utilization", type=float, default=0.85, help="vllm: share of GPU memory")
    parser.add_argument("--max-model-len", type=int, default=16384, help="vllm: prompt + response tokens")


def _add_pixel_args(parser: argparse.ArgumentParser, note: str, defaults: PixelLimits = DEFAULT_FRAME.limits) -> None:
    for name, default in zip(("min", "max"), (defaults.min_pixels, defaults.max_pixels)):
        parser.add_argument(
            f"--{name}-pixels",
            type=_optional_int,
            default=UNSET,
            help=f"EasyR1 data.{name}_pixels, 'none' for off (default: the recipe's, else {default}){note}",
        )


def _local_model(model: str | None) -> Path | None:
    """The checkpoint folder of ``--model`` (a folder, or a hub id in the local cache), or None (missing, served)."""
    if not model:
        return None
    try:
        return resolve_model(model)
    except ModelNotFound:
        return None  # the command names a missing checkpoint itself, after its data checks


LMMS_FRAMES = {"qwen2_5_vl_7b": "qwen2_5_vl", "qwen3_vl_4b": "qwen3_vl", "mimo_vl_7b": "qwen2_5_vl"}
"""``lmms-eval --backbone`` -> the family's frame, checked against the checkpoint like a recipe's"""


def check_frame(args: argparse.Namespace) -> None:
    """Refuse a checkpoint of another family than the frame the command runs it in, before any model loads."""
    if getattr(args, "allow_frame_mismatch", True) or not getattr(args, "model", None):
        return
    where, name, fix = "", "--coord-frame", None
    recipe_fix = "give the --recipe the checkpoint was trained with (its frame is {frame})"
    if args.command == "lmms-eval":
        frame, where, name = LMMS_FRAMES[args.backbone], f"--backbone {args.backbone}: ", "coord_frame"
        fix = "give the --backbone of the checkpoint's family (its frame is {frame})"
    elif args.command == "aib":
        frame, where, name, fix = (
            getattr(args, "recipe_frame", None),
            f"--recipe {args.recipe}: ",
            "coord_frame",
            recipe_fix,
        )
    else:
        frame = getattr(args, "coord_frame", None)
        if getattr(args, "frame_source", None) not in (None, "--coord-frame"):
            where, name, fix = f"--recipe {args.recipe}: ", "coord_frame", recipe_fix + ", or --coord-frame {frame}"
    model_dir = _local_model(args.model)
    if frame is None or model_dir is None:
        return
    check_checkpoint_frame(model_dir, frame, name, fix, where=where)


def check_pixels(args: argparse.Namespace) -> None:
    """Refuse ``--min-pixels`` above ``--max-pixels`` (the resize would silently use one of them)."""
    low, high = getattr(args, "min_pixels", None), getattr(args, "max_pixels", None)
    if isinstance(low, int) and isinstance(high, int) and low > high:
        raise UserError(f"--min-pixels {low} is above --max-pixels {high}; fix one of them")


RUN_INPUTS = {"cue-search": ("data", "model"), "bench": ("data", "model"), "aib": ("data", "model"),
              "agent": ("data", "model", "replay"), "lmms-eval": ("model",), "suppress": ("data",)}  # fmt: skip
"""what each command reads: its --out may not be, hold or sit inside one of them"""


def check_outputs(args: argparse.Namespace) -> None:
    """Refuse an --out that is a file where a folder is written, or that would land on the command's inputs."""
    if args.command in RUN_INPUTS:
        inputs = [getattr(args, name, None) for name in RUN_INPUTS[args.command]]
        # a hub id or a served model name is no path of ours
        inputs = [i for i in inputs if i is not None and Path(i).exists()]
        if args.command == "cue-search" or getattr(args, "benchmark", "vstar") not in ("vstar", "manifest"):
            # --data must be a file here: a folder is reported by the loader as the wrong kind of --data
            inputs = [i for i in inputs if i == getattr(args, "model", None) or not Path(i).is_dir()]
        check_output(args.out, inputs, expect="dir")
    elif args.command == "plot-aib":
        check_output(args.out, expect="dir")
    elif args.command == "plot-training" and args.out is not None:
        # the log files are the inputs (the default output sits beside them, in the run folder)
        run = Path(args.run_dir)
        logs = [run] if run.is_file() else [run / "experiment_log.jsonl", run / "trainer_state.json"]
        check_output(args.out, logs, expect="file")
    elif args.command == "score" and args.out is not None:
        check_output(args.out, [args.data, args.predictions], expect="dir")


def _generation(args: argparse.Namespace) -> GenerationConfig:
    return GenerationConfig(
        max_new_tokens=args.max_new_tokens,
        pixels=PixelLimits(args.min_pixels, args.max_pixels),
        batch_size=args.batch_size,
    )


def _backend_kwargs(args: argparse.Namespace) -> dict:
    if args.backend != "vllm":
        return {}
    return {
        "tensor_parallel_size": args.tensor_parallel_size,
        "gpu_memory_utilization": args.gpu_memory_utilization,
        "max_model_len": args.max_model_len,
    }


def _print_result(out: Path, table_file: str) -> None:
    print((out / table_file).read_text(encoding="utf-8"))
    print(f"written to {out}")


def cmd_cue_search(args: argparse.Namespace) -> None:
    from locus_eval import cue_search

    cue_search.run(
        args.model,
        args.data,
        args.out,
        backend=args.backend,
        coord_frame=args.coord_frame,
        format_prompt_path=args.prompt,
        generation=_generation(args),
        limit=args.limit,
        backend_kwargs=_backend_kwargs(args),
    )
    _print_result(args.out, "table.md")


def cmd_score(args: argparse.Namespace) -> None:
    from locus_eval import cue_search
    from locus_eval.predictions import load_settings, read_predictions

    if not args.predictions.is_file():
        # read_predictions treats a missing file as "nothing generated yet" (resume); here it is a wrong path
        raise UserError(
            f"{args.predictions}: file not found; --predictions is the predictions.jsonl a `locus-eval cue-search "
            "--out DIR` run wrote (DIR/predictions.jsonl)"
        )
    # generation.json next to the predictions knows the pixel limits and the template; flags override it
    saved = load_settings(args.predictions.parent) or {}
    _check_same_data(saved, Path(args.data), args.allow_other_data)
    # the frame the run was scored in by cue-search itself (its metrics.json, unless a rescore replaced it)
    report = _read_json(args.predictions.parent / "metrics.json")
    run_frame = None if "rescored" in report else (report.get("scoring") or {}).get("coord_frame")
    if run_frame and args.frame_source != "--coord-frame" and run_frame != args.coord_frame:
        raise UserError(
            f"the run was generated and scored with coord_frame={run_frame} ({args.predictions.parent}/metrics.json) "
            f"but {args.frame_source} is {args.coord_frame}; give the run's recipe, or --coord-frame "
            f"{args.coord_frame} to rescore in another frame on purpose"
        )

    def pick(name: str, default):
        value = getattr(args, name)
        # pixel flags use UNSET for "not given" (None means "off"); the other flags use None
        if value is UNSET or (value is None and name not in ("min_pixels", "max_pixels")):
            return saved.get(name, default)
        if name in saved and saved[name] != value:
            print(f"note: scoring with {name}={value}; the run generated with {saved[name]}", file=sys.stderr)
        return value

    # a run without generation.json was made with the defaults of `locus-eval cue-search`
    default = FrameOptions(coord_frame=args.coord_frame, **DEFAULT_FRAME.limits.pixel_kwargs)
    config = FrameOptions(
        coord_frame=args.coord_frame,
        **{name: pick(name, value) for name, value in default.pixel_kwargs.items()},
        think_prefilled=pick("think_prefilled", default.think_prefilled),
    )
    examples = cue_search.load_examples(args.data)
    rows = cue_search.score_predictions(examples, read_predictions(args.predictions), config, args.allow_partial)
    out = args.out or args.predictions.parent
    metrics_file = out / "metrics.json"
    if metrics_file.is_file() and not args.overwrite and "rescored" not in _read_json(metrics_file):
        raise UserError(
            f"{metrics_file} is the report the run itself wrote; pass --out DIR for the rescore (or --overwrite to "
            "replace it)"
        )
    cue_search.write_report(out, rows, config, label=args.label or out.name, extra={"rescored": True})
    _print_result(out, "table.md")


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    return a.is_file() and b.is_file() and a.stat().st_size == b.stat().st_size and a.read_bytes() == b.read_bytes()


def _check_same_data(saved: dict, data: Path, allow: bool) -> None:
    """Refuse scoring a run's predictions against another parquet than the one it generated from."""
    source = saved.get("data")
    if allow or not source or not Path(source).is_file() or not data.is_file() or _same_file(Path(source), data):
        return
    raise UserError(
        f"the predictions were generated from {source} (generation.json), not --data {data}, and the files differ; "
        "score against the run's data, or pass --allow-other-data"
    )


def cmd_bench(args: argparse.Namespace) -> None:
    from locus_eval import benchmarks

    benchmarks.run(
        args.benchmark,
        args.data,
        args.model,
        args.out,
        backend=args.backend,
        coord_frame=args.coord_frame,
        generation=_generation(args),
        limit=args.limit,
        seed=args.seed,
        backend_kwargs=_backend_kwargs(args),
    )
    _print_result(args.out, "table.md")


def cmd_agent(args: argparse.Namespace) -> None:
    from locus_eval import agent

    engine = {"tensor_parallel_size": args.tensor_parallel_size, "gpu_memory_utilization": args.gpu_memory_utilization}
    if args.max_model_len is not None:
        engine["max_model_len"] = args.max_model_len
    config = agent.AgentConfig(
        benchmark=args.benchmark,
        data=args.data,
        out=args.out,
        backend=args.backend,
        model=args.model,
        replay=args.replay,
        base_url=args.base_url,
        coord_frame=args.coord_frame,
        max_visual_tokens=args.max_visual_tokens,
        max_crop_visual_tokens=args.max_crop_visual_tokens,
        max_turns=args.max_turns,
        max_new_tokens=args.max_new_tokens,
        crop_mode=args.crop_mode,
        save_crops=args.save_crops,
        limit=args.limit,
        batch_size=args.batch_size,
        seed=args.seed,
        picture=args.picture,
        engine=engine if args.backend == "vllm" else {},
    )
    agent.run(config)
    _print_result(args.out, agent.TABLE_FILE)


def _add_agent_parser(sub) -> None:
    p = sub.add_parser(
        "agent",
        help="run a crop-tool agent (LFPC, DeepEyes) on V*, HR-Bench or a VQA manifest",
        description=(
            "Run a crop-tool agent checkpoint (LFPC, DeepEyes: image_zoom_in_tool calls, <answer>) on V*, HR-Bench "
            "or a VQA manifest: the full image at --max-visual-tokens, crops cut from the original, up to "
            "--max-turns assistant turns, greedy (resumable). Writes trajectories.jsonl, metrics.json, table.md "
            "(accuracy as bench scores it; tool calls, turns, crop IoU, overlap, bbox ratio, crop tokens, seconds "
            "per question), trajectories.png and, with --save-crops, crops/. See docs/lfpc.md."
        ),
    )
    p.add_argument("--benchmark", required=True, choices=("vstar", "hrbench", "manifest"), help="file layout")
    p.add_argument(
        "--data",
        required=True,
        type=Path,
        help="V* folder or test_questions.jsonl, HR-Bench .tsv, or a VQA manifest (.jsonl/.parquet or its folder)",
    )
    p.add_argument(
        "--model",
        default=None,
        help="checkpoint folder or hub id (hf, vllm); the served model name "
        "(openai); optional for replay (its chat template and tokenizer)",
    )
    p.add_argument(
        "--backend",
        choices=("hf", "vllm", "openai", "replay"),
        default="vllm",
        help="vllm on GPUs, hf on CPU or GPU, openai for a server (vllm serve), replay for recorded turns",
    )
    p.add_argument("--replay", type=Path, default=None, help='replay: JSONL of {"id", "turns": [...]} lines')
    p.add_argument("--base-url", default=None, help="openai: the server's API root, e.g. http://localhost:8000/v1")
    p.add_argument(
        "--coord-frame",
        choices=("qwen2_5_vl", "qwen3_vl"),
        default=None,
        help="how the model writes boxes (default: from the checkpoint's config.json)",
    )
    p.add_argument(
        "--max-visual-tokens", type=int, default=1024, help="visual tokens of the full image (paper: 1024 and 16384)"
    )
    p.add_argument("--max-crop-visual-tokens", type=int, default=16384, help="visual tokens a crop may take")
    p.add_argument("--max-turns", type=int, default=12, help="assistant turns per question (paper: 12)")
    p.add_argument("--max-new-tokens", type=int, default=2048, help="tokens per assistant turn")
    p.add_argument(
        "--crop-mode",
        choices=("model", "gt", "noise"),
        default="model",
        help="model: its crop; gt: the best-matching GT region; noise: same-size noise (Tables 1, 5, 7)",
    )
    p.add_argument("--save-crops", action="store_true", help="write every crop handed to the model to OUT/crops/")
    p.add_argument("--out", required=True, type=Path, help="run directory (resumed if it exists)")
    # the agent checks its counts itself (AgentConfig), with one line naming the flag
    p.add_argument("--limit", type=int, default=None, help="only the first N questions (default: all)")
    p.add_argument("--batch-size", type=int, default=8, help="questions run together, turn by turn")
    _add_mismatch_arg(p)
    p.add_argument("--seed", type=int, default=0, help="V* option shuffle (as bench) and noise crops")
    p.add_argument("--picture", type=int, default=4, help="episodes drawn in OUT/trajectories.png (0: none)")
    p.add_argument("--tensor-parallel-size", type=int, default=1, help="vllm: GPUs per model")
    p.add_argument("--gpu-memory-utilization", type=float, default=0.85, help="vllm: share of GPU memory")
    p.add_argument("--max-model-len", type=int, default=None, help="vllm: context tokens (default: the model's)")
    p.set_defaults(func=cmd_agent)


def cmd_lmms_eval(args: argparse.Namespace) -> None:
    from locus_eval import lmms

    if args.tasks is not None and not all(task.strip() for task in args.tasks.split(",")):
        raise UserError(f"--tasks {args.tasks!r} names an empty task; give comma-separated lmms-eval task names")
    model_dir = _local_model(args.model)
    if model_dir is not None and not (model_dir / "config.json").is_file():
        raise UserError(f"--model {args.model} has no config.json: not a checkpoint folder")
    config = lmms.LmmsEvalConfig(
        checkpoint=args.model,
        backbone=args.backbone,
        out=args.out,
        tasks=tuple(args.tasks.split(",")) if args.tasks is not None else lmms.PERCEPTION_TASKS + lmms.REASONING_TASKS,
        max_new_tokens=args.max_new_tokens,
        max_pixels=args.max_pixels,
        limit=args.limit,
        python=args.python,
    )
    for argv in lmms.run(config, dry_run=args.dry_run):
        print(shlex.join(argv))
    print(f"commands saved to {args.out / 'command.sh'}")


def cmd_aib(args: argparse.Namespace) -> None:
    from locus_eval import aib

    summary = aib.run(
        args.model,
        args.data,
        args.out,
        min_pixels=args.min_pixels,
        max_pixels=args.max_pixels,
        max_new_tokens=args.max_new_tokens,
        limit=args.limit,
        format_prompt_path=args.prompt,
        save_maps=args.save_maps,
        attention=args.attention,
    )
    print(json.dumps({k: summary[k] for k in ("n", "mean_aib", "peak_in_box")}, indent=2))
    print(f"written to {args.out}")


def cmd_plot_aib(args: argparse.Namespace) -> None:
    from locus_eval import plots

    for path in plots.plot_aib_runs(args.runs, args.out, labels=args.labels, num_examples=args.examples):
        print(f"wrote {path}")


def cmd_suppress(args: argparse.Namespace) -> None:
    from locus_eval import suppress

    count = suppress.suppress_benchmark(args.benchmark, args.data, args.out)
    print(f"wrote {count} context-suppressed images under {args.out}")


def cmd_plot_training(args: argparse.Namespace) -> None:
    from locus_eval import plots

    out = plots.plot_training(args.run_dir, args.out, ema=args.ema)
    print(f"wrote {out}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="locus-eval",
        description=("Evaluate a merged LOCUS checkpoint: proxy task, benchmarks, attention, training curves."),
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "cue-search",
        help="generate and score the cue-search validation split (Table 10)",
        description=(
            "Generate greedy responses for the cue-search parquet (resumable) and score them with the training "
            "reward's parser, frames and IoU: mean IoU, ACC@0.5, ACC@0.75, per size bin (Table 10)."
        ),
    )
    _add_generation_args(p, max_new_tokens=2048)
    p.add_argument("--data", required=True, help="cue-search parquet, e.g. data/locus_cue/val.parquet")
    _add_recipe_arg(p)
    _add_frame_arg(p)
    p.add_argument("--prompt", default=UNSET, help="format prompt used in training (default: the recipe's)")
    p.set_defaults(func=cmd_cue_search)

    p = sub.add_parser(
        "score",
        help="score saved cue-search predictions without a model",
        description=(
            "Rescore a cue-search run's predictions.jsonl without a model (another frame, or after a scorer fix);"
            " pixel limits and the think prefill come from the run's generation.json unless given."
        ),
    )
    p.add_argument("--data", required=True, help="the cue-search parquet the predictions were made for")
    p.add_argument("--predictions", required=True, type=Path, help="predictions.jsonl of a cue-search run")
    _add_recipe_arg(p)
    _add_frame_arg(p)
    p.add_argument("--out", type=Path, default=None, help="report directory (default: next to the predictions)")
    p.add_argument("--label", default=None, help="row name in the table (default: the report directory name)")
    _add_pixel_args(p, "; without either, the run's generation.json")
    p.add_argument("--processor-min-pixels", type=int, default=None, help="override the processor's min pixels")
    p.add_argument("--processor-max-pixels", type=int, default=None, help="override the processor's max pixels")
    p.add_argument(
        "--think-prefilled",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="responses start inside <think> (default: from the run's generation.json, else no)",
    )
    p.add_argument("--allow-partial", action="store_true", help="score only examples that have a prediction")
    p.add_argument(
        "--overwrite", action="store_true", help="replace the report cue-search wrote in the run (default: refuse)"
    )
    p.add_argument(
        "--allow-other-data",
        action="store_true",
        help="score against another --data than the one the run generated from (its generation.json)",
    )
    p.set_defaults(func=cmd_score)

    p = sub.add_parser(
        "bench",
        help="V*Bench, HR-Bench 4K/8K and RefCOCO-family grounding from local files",
        description=(
            "V*Bench (per-sample folders or test_questions.jsonl), HR-Bench 4K/8K (VLMEvalKit TSV, per-cycle "
            "accuracy) and RefCOCO/+/g (one sample per referring expression, ACC@0.5) from local files; the "
            "protocol that produced a number is recorded in metrics.json and table.md."
        ),
    )
    _add_generation_args(p, max_new_tokens=1024, pixels=BENCH_FRAME.limits)
    p.add_argument("--benchmark", required=True, choices=("vstar", "hrbench", "refcoco"), help="file layout")
    p.add_argument("--data", required=True, help="V* folder, HR-Bench .tsv, or RefCOCO .parquet/.jsonl")
    _add_recipe_arg(p)
    _add_frame_arg(p, f"box convention (refcoco; default {BENCH_FRAME.coord_frame})")
    p.add_argument("--seed", type=int, default=0, help="V* option shuffle seed")
    p.set_defaults(func=cmd_bench)

    _add_agent_parser(sub)

    p = sub.add_parser(
        "aib",
        help="Attention-in-Box per layer, mean AIB and Peak-in-Box (HF, answer-row probe)",
        description=(
            "Attention-in-Box per layer, mean AIB and Peak-in-Box (Fig. 4, 5, 8): greedy generation, then one "
            "forward whose answer-token attention row is captured per layer (SDPA, O(L) memory; --attention eager"
            " cross-checks)."
        ),
    )
    p.add_argument("--model", required=True, help="merged checkpoint directory (HF format)")
    p.add_argument("--data", required=True, help="cue-search parquet, or a V* folder (boxes from its json)")
    p.add_argument("--out", required=True, type=Path, help="output directory")
    _add_recipe_arg(p)
    p.add_argument("--prompt", default=UNSET, help="format prompt (cue-search parquet only; default: the recipe's)")
    _add_pixel_args(p, "")
    p.add_argument("--max-new-tokens", type=at_least(1), default=1024, help="budget to reach the first answer token")
    p.add_argument("--limit", type=at_least(1), default=None, help="only the first N examples (default: all)")
    p.add_argument("--save-maps", type=at_least(0), default=8, help="keep attention maps of the first N for heatmaps")
    _add_mismatch_arg(p)
    p.add_argument(
        "--attention",
        choices=("probe", "eager"),
        default="probe",
        help="probe: SDPA forward, answer row computed from the captured query and keys (O(L) memory); eager: "
        "output_attentions, every layer's L x L weights (cross-check on short inputs)",
    )
    p.set_defaults(func=cmd_aib)

    p = sub.add_parser(
        "lmms-eval",
        help="the remaining benchmarks through lmms-eval 0.7.3, with the backbone's thinking and token budget",
        description="Run lmms-eval 0.7.3 on a merged checkpoint with the backbone's generation settings (thinking "
        "switch, greedy, 8,192 new tokens unless overridden, the answer after the last </think>); the exact commands "
        "are saved as OUT/command.json and OUT/command.sh.",
    )
    p.add_argument("--model", required=True, help="merged checkpoint directory (HF format)")
    p.add_argument("--backbone", required=True, choices=("qwen2_5_vl_7b", "qwen3_vl_4b", "mimo_vl_7b"),
                   help="recipe name of the backbone: sets lmms-eval's model class and thinking mode")  # fmt: skip
    p.add_argument("--out", required=True, type=Path, help="lmms-eval --output_path; command.json/.sh land here")
    p.add_argument("--tasks", default=None, help="comma-separated lmms-eval tasks (default: the paper's twelve)")
    p.add_argument(
        "--max-new-tokens", type=at_least(1), default=8192, help="generation budget for every task (paper: 8192)"
    )
    p.add_argument(
        "--max-pixels", type=at_least(1), default=BENCH_FRAME.max_pixels, help="the model class's max_pixels"
    )
    p.add_argument("--limit", type=at_least(1), default=None, help="lmms-eval --limit (smoke runs; default: all)")
    _add_mismatch_arg(p)
    p.add_argument("--python", default=sys.executable, help="interpreter of the environment holding lmms-eval")
    p.add_argument("--dry-run", action="store_true", help="write command.json/.sh and print them; run nothing")
    p.set_defaults(func=cmd_lmms_eval)

    p = sub.add_parser(
        "plot-aib",
        help="layer-wise AIB curves and heatmap overlays for one or two aib runs",
        description=(
            "Plot layer-wise AIB curves and attention heatmap overlays for one or two `locus-eval aib` runs."
        ),
    )
    p.add_argument("runs", nargs="+", type=Path, help="one or two aib output directories")
    p.add_argument("--labels", nargs="+", default=None, help="legend names (default: directory names)")
    p.add_argument("--out", required=True, type=Path, help="directory for aib_layers.png and aib_heatmaps.png")
    p.add_argument("--examples", type=at_least(0), default=4, help="heatmap rows")
    p.set_defaults(func=cmd_plot_aib)

    p = sub.add_parser(
        "suppress",
        help="write a benchmark copy with everything outside the GT boxes black",
        description=(
            "Write a copy of a benchmark with everything outside the GT boxes black (context suppression, Table "
            "1); same layout, canvas and scale."
        ),
    )
    p.add_argument("--benchmark", required=True, choices=("vstar", "refcoco"), help="file layout")
    p.add_argument("--data", required=True, help="V* folder or RefCOCO .jsonl")
    p.add_argument("--out", required=True, type=Path, help="output folder, same layout as the input")
    p.set_defaults(func=cmd_suppress)

    p = sub.add_parser(
        "plot-training",
        help="reward, IoU and format curves from EasyR1's experiment_log.jsonl",
        description=(
            "Plot train reward, IoU and format curves (raw and smoothed) with validation points from EasyR1's "
            "experiment_log.jsonl (Fig. 9); for an LFPC run also its training dynamics (LFPC Figs. 5-6): accuracy, "
            "tool calls per trajectory, turns, share that hit the turn limit, crop overlap, bbox ratio, crop visual "
            "tokens."
        ),
    )
    p.add_argument("run_dir", type=Path, help="EasyR1 save_checkpoint_path, or the experiment_log.jsonl itself")
    p.add_argument("--out", type=Path, default=None, help="PNG path (default: RUN_DIR/training_curves.png)")
    p.add_argument("--ema", type=_fraction, default=0.9, help="smoothing of the train curves, in [0, 1) (0: none)")
    p.set_defaults(func=cmd_plot_training)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        apply_recipe(args)
        check_pixels(args)
        check_frame(args)
        check_outputs(args)
        args.func(args)
    except (UserError, FileNotFoundError, ValueError, ImportError) as err:
        # user errors (bad paths, mismatched runs, missing optional backends) read better without a traceback
        print(f"locus-eval {args.command}: error: {err}", file=sys.stderr)
        raise SystemExit(2) from err


if __name__ == "__main__":
    main()
