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

from locus_data.errors import UserError
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
    return None if text.lower() in ("none", "null") else int(text)


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
    flags = {setting: getattr(args, flag) for flag, setting in RECIPE_FLAGS.items() if hasattr(args, flag)}
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
    parser.add_argument("--max-new-tokens", type=int, default=max_new_tokens, help="generation budget per answer")
    parser.add_argument("--batch-size", type=int, default=8, help="prompts per generate call")
    _add_pixel_args(parser, "", pixels)
    parser.add_argument("--limit", type=int, default=None, help="only the first N examples (smoke runs)")
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
    cue_search.write_report(out, rows, config, label=args.label or out.name)
    _print_result(out, "table.md")


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
    p.add_argument("--limit", type=int, default=None, help="only the first N questions (smoke runs)")
    p.add_argument("--batch-size", type=int, default=8, help="questions run together, turn by turn")
    p.add_argument("--seed", type=int, default=0, help="V* option shuffle (as bench) and noise crops")
    p.add_argument("--picture", type=int, default=4, help="episodes drawn in OUT/trajectories.png (0: none)")
    p.add_argument("--tensor-parallel-size", type=int, default=1, help="vllm: GPUs per model")
    p.add_argument("--gpu-memory-utilization", type=float, default=0.85, help="vllm: share of GPU memory")
    p.add_argument("--max-model-len", type=int, default=None, help="vllm: context tokens (default: the model's)")
    p.set_defaults(func=cmd_agent)


def cmd_lmms_eval(args: argparse.Namespace) -> None:
    from locus_eval import lmms

    config = lmms.LmmsEvalConfig(
        checkpoint=args.model,
        backbone=args.backbone,
        out=args.out,
        tasks=tuple(args.tasks.split(",")) if args.tasks else lmms.PERCEPTION_TASKS + lmms.REASONING_TASKS,
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
    p.add_argument("--max-new-tokens", type=int, default=1024, help="budget to reach the first answer token")
    p.add_argument("--limit", type=int, default=None, help="only the first N examples")
    p.add_argument("--save-maps", type=int, default=8, help="keep attention maps of the first N for heatmaps")
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
    p.add_argument("--max-new-tokens", type=int, default=8192, help="generation budget for every task (paper: 8192)")
    p.add_argument("--max-pixels", type=int, default=BENCH_FRAME.max_pixels, help="the model class's max_pixels")
    p.add_argument("--limit", type=int, default=None, help="lmms-eval --limit (smoke runs)")
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
    p.add_argument("--examples", type=int, default=4, help="heatmap rows")
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
    p.add_argument("--ema", type=float, default=0.9, help="smoothing of the train curves (0: none)")
    p.set_defaults(func=cmd_plot_training)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        apply_recipe(args)
        args.func(args)
    except (UserError, FileNotFoundError, ValueError, ImportError) as err:
        # user errors (bad paths, mismatched runs, missing optional backends) read better without a traceback
        print(f"locus-eval {args.command}: error: {err}", file=sys.stderr)
        raise SystemExit(2) from err


if __name__ == "__main__":
    main()
