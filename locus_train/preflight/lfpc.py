"""The LFPC launcher (``bash examples/lfpc_qwen2_5_vl_7b.sh``): selection -> exports -> Stage I -> merge -> Stage II.

    python3 -m locus_train.preflight.lfpc --recipe config/lfpc_stage1_qwen2_5_vl_7b.yaml [--stage all|1|2]
        [--dry-run] [key=value ...]

Each stage is an LFPC recipe behind the same preflight as the LOCUS launchers (:func:`locus_train.preflight.preflight`
with task ``lfpc``: EasyR1 schema and startup rules, the ``lfpc:`` section and pixel policy, the reward, the model,
the export valid, every prompt within ``data.max_prompt_length`` with the view and the agent's system prompt, GPUs),
and trains through ``python3 -m locus_train.easyr1.main``. The steps, in order (a step whose output exists is
skipped, so re-running the same command resumes):

1. ``locus-data select-resolution`` of ``LFPC_DATA`` with the base model into ``LFPC_OUT/selection`` (Table 9's
   strategies into ``selection_hard`` / ``selection_random``), at Stage I's ``data.max_pixels``;
2. ``locus-data export-lfpc`` of the selected manifest (Stage I) and of ``LFPC_BOXED_DATA`` with ``--view original
   --require-boxes`` (Stage II: the boxed set is not resolution-selected; docs/lfpc.md says why and how to change it)
   into ``LFPC_OUT/data/``;
3. Stage I from ``MODEL_PATH``, checkpoints in ``LFPC_OUT/checkpoints/<experiment>``;
4. EasyR1's ``scripts/model_merger.py`` (in ``EASYR1_DIR``) on Stage I's last checkpoint;
5. Stage II from that merged model.

Before any of it runs, every check that needs no GPU runs for both stages: the manifests (``locus-data validate``:
ids, images, nested boxes, a view no larger than its original; Stage II: every question boxed), both configs, the
reward, the model. One failed check stops everything with a line naming the fix. ``--dry-run`` runs those checks,
writes nothing, and prints every command in order (Stage II's model is Stage I's planned output and need not exist).

Overlays (``LFPC_ABLATION``, comma-separated) are EasyR1 keys and ``lfpc:`` keys merged into both stages' recipes,
plus these ``locus:`` keys: ``selection: hard|random`` (Table 9: the selection strategy), ``stage: 2`` (the overlay
changes Stage II only and Stage I's run is the main one's, e.g. Table 10's reward ablations), ``mix_data: true``
(Table 8: one stage from the base model on Stage I's selected data and the boxed set 1:1, ``locus-data merge-vqa
--equal``, with the overlay's reward).
"""

import argparse
import dataclasses
import json
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from locus_data.cli import plugin_commands
from locus_data.errors import UserError
from locus_data.yaml_config import read_yaml
from locus_train.easyr1_config import LOCUS_SECTION, RecipeError, load_schema, resolve, with_overrides
from locus_train.preflight import preflight
from locus_train.preflight.checks import Check, check_gpus
from locus_train.preflight.commands import locus_data_cli, path_overrides, write_config_file
from locus_train.preflight.lfpc_checks import check_manifest
from locus_train.preflight.plan import LfpcStage, Plan, absolute, make_plan
from locus_train.recipe import recipe_root


STRATEGIES = ("lfpc", "hard", "random")
"""``locus-data select-resolution --strategy`` values (Table 9); ``locus: {selection: ...}`` picks one"""
MERGER = "scripts/model_merger.py"
"""EasyR1's FSDP -> Hugging Face merger, relative to its checkout (``EASYR1_DIR``; the image's /workspace/EasyR1)"""


@dataclass
class Step:
    """One command of the pipeline, and the output that shows it has run."""

    name: str
    command: list[str]
    output: Path | None = None
    """when it exists, the step is skipped (a re-run resumes)"""

    def done(self) -> bool:
        return self.output is not None and self.output.exists()


@dataclass
class Layout:
    """Where everything goes under ``LFPC_OUT``."""

    out: Path
    strategy: str

    @property
    def selection(self) -> Path:
        return self.out / ("selection" if self.strategy == "lfpc" else f"selection_{self.strategy}")

    @property
    def selected_manifest(self) -> Path:
        return self.selection / "manifest.jsonl"

    def data(self, name: str) -> Path:
        return self.out / "data" / name

    def checkpoints(self, experiment: str) -> Path:
        return self.out / "checkpoints" / experiment


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="python -m locus_train.preflight.lfpc", description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", required=True, help="the Stage I recipe (config/lfpc_stage1_*.yaml)")
    parser.add_argument("--stage2-recipe", help="the Stage II recipe (default: the Stage I recipe's name, stage2)")
    parser.add_argument(
        "--stage", choices=("all", "1", "2"), default="all", help="run both stages (default), or one of them"
    )
    parser.add_argument("--model-path", default=env("MODEL_PATH"), help="the base model [$MODEL_PATH]")
    parser.add_argument("--data", default=env("LFPC_DATA"), help="Stage I VQA manifest, before selection [$LFPC_DATA]")
    parser.add_argument(
        "--boxed-data", default=env("LFPC_BOXED_DATA"), help="Stage II VQA manifest, nested boxes [$LFPC_BOXED_DATA]"
    )
    parser.add_argument(
        "--out", default=env("LFPC_OUT"), help="selection, exports, checkpoints [$LFPC_OUT; runs/lfpc]"
    )
    parser.add_argument("--ablation", default=env("LFPC_ABLATION"), help="overlay YAML(s) [$LFPC_ABLATION]")
    parser.add_argument(
        "--select-backend",
        default=env("LFPC_SELECT_BACKEND", "vllm"),
        help="select-resolution's backend: hf, vllm or openai [$LFPC_SELECT_BACKEND; vllm]",
    )
    parser.add_argument(
        "--easyr1-dir", default=env("EASYR1_DIR", "/workspace/EasyR1"), help=f"EasyR1 checkout with {MERGER}"
    )
    parser.add_argument("--nnodes", type=int, default=env("NNODES", "1"), help="nodes [$NNODES]")
    parser.add_argument("--n-gpus-per-node", type=int, default=env("N_GPUS_PER_NODE", "8"), help="[$N_GPUS_PER_NODE]")
    parser.add_argument("--dry-run", action="store_true", help="checks only; print every command, write nothing")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="EasyR1 / lfpc.* overrides, both stages")
    return parser.parse_args(argv)


def overlay_keys(path: Path) -> dict:
    """An overlay's ``locus:`` section (which stage it changes, which selection, whether data are mixed)."""
    section = read_yaml(path, error=RecipeError).get(LOCUS_SECTION) or {}
    if section.get("selection", "lfpc") not in STRATEGIES:
        raise RecipeError(f"{path}: locus.selection must be one of {', '.join(STRATEGIES)}")
    if section.get("stage", 1) not in (1, 2):
        raise RecipeError(f"{path}: locus.stage must be 2 (the overlay changes Stage II only) or left out")
    return dict(section)


def stage_plan(args: argparse.Namespace, recipe: Path, ablations: list[Path], model: str, data: Path, out: Layout):
    """The preflight plan of one stage; its checkpoints go to ``LFPC_OUT/checkpoints/<experiment>``."""
    namespace = argparse.Namespace(
        recipe=str(recipe),
        task="lfpc",
        model_path=model,
        coco_root=None,
        data_dir=str(data),
        data_config=None,
        ablation=",".join(str(path) for path in ablations),
        nnodes=args.nnodes,
        n_gpus_per_node=args.n_gpus_per_node,
        dry_run=args.dry_run,
        overrides=list(args.overrides),
    )
    plan = make_plan(namespace)
    return dataclasses.replace(plan, checkpoint_dir=out.checkpoints(experiment(plan)))


def experiment(plan: Plan) -> str:
    """The run's experiment name as the EasyR1 command sets it (the recipe's, with the overlays' names)."""
    names = [item for item in path_overrides(plan.raw, plan) if item.startswith("trainer.experiment_name=")]
    return names[-1].split("=", 1)[1] if names else str(plan.raw.trainer.experiment_name)


def merged_model(plan: Plan) -> tuple[Path, Path]:
    """``(actor folder, merged model folder)`` of a stage's last checkpoint: the tracker's step once it has run,
    else ``trainer.max_steps`` (EasyR1 always saves the last step)."""
    tracker = plan.checkpoint_dir / "checkpoint_tracker.json"
    if tracker.is_file():
        step = json.loads(tracker.read_text(encoding="utf-8"))["last_global_step"]
    else:
        cfg = resolve(with_overrides(plan.raw, plan.overrides), load_schema())
        step = cfg["trainer"]["max_steps"]
        if step is None:
            raise UserError(f"{plan.recipe.name}: set trainer.max_steps (Table 12: 80) so Stage II knows its model")
    actor = plan.checkpoint_dir / f"global_step_{step}" / "actor"
    return actor, actor / "huggingface"


def selection_command(args: argparse.Namespace, plan: Plan, out: Layout) -> list[str]:
    max_pixels = resolve(with_overrides(plan.raw, plan.overrides), load_schema())["data"]["max_pixels"]
    return locus_data_cli(
        ["select-resolution", "--data", str(args.data), "--model", plan.model_path, "--backend", args.select_backend]
        + ["--out", str(out.selection), "--strategy", out.strategy, "--max-pixels", str(max_pixels)]
    )


def export_command(manifest: Path | str, out: Path, stage2: bool) -> list[str]:
    extra = ["--view", "original", "--require-boxes"] if stage2 else []
    return locus_data_cli(["export-lfpc", str(manifest), "--out", str(out), *extra])


def check_merger(easyr1_dir: Path, dry_run: bool) -> Check:
    """EasyR1's checkpoint merger, which turns Stage I's FSDP shards into Stage II's model, is where it is run from."""
    merger = easyr1_dir / MERGER
    if merger.is_file():
        return Check("merger", True, str(merger))
    message = f"{merger} not found; set EASYR1_DIR to a checkout of EasyR1 (the image's /workspace/EasyR1)"
    if dry_run:
        return Check("merger", None, f"{message} (dry run: a real launch needs it)")
    return Check("merger", False, message)


def report(check: Check) -> None:
    print(check.line(), flush=True)


def run_checks(title: str, plan: Plan, stage: LfpcStage) -> tuple[bool, list[str]]:
    """One stage's preflight, printed under ``title``; ``(all passed, the training command)``."""
    print(
        f"== {title}: {plan.recipe.name}"
        + (f" + {', '.join(p.name for p in plan.ablations)}" if plan.ablations else "")
    )
    checks, command = preflight(plan, report=report, stage=stage)
    return not any(check.ok is False for check in checks), command


def execute(step: Step, dry_run: bool) -> None:
    """Run (or, dry, print) one step; UserError when it fails."""
    if step.done():
        print(f"-- {step.name}: {step.output} exists; skipped", flush=True)
        return
    print(f"-- {step.name}: {shlex.join(step.command)}", flush=True)
    if dry_run:
        return
    if subprocess.run(step.command).returncode != 0:
        raise UserError(f"{step.name} failed (see above): {shlex.join(step.command)}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except UserError as err:
        print(f"lfpc: error: {err}", file=sys.stderr)
        return 1


def run(args: argparse.Namespace) -> int:
    recipe1 = Path(args.recipe).expanduser().resolve()
    root = recipe_root(recipe1)
    recipe2 = Path(args.stage2_recipe).expanduser().resolve() if args.stage2_recipe else None
    recipe2 = recipe2 or recipe1.with_name(recipe1.name.replace("stage1", "stage2"))
    if not args.model_path:
        raise UserError("MODEL_PATH is not set; the launcher sets the base model (a checkpoint folder or hub id)")
    ablations = [absolute(p, root) for p in (args.ablation or "").replace(",", " ").split()]
    keys = {path: overlay_keys(path) for path in ablations}
    merged = {key: value for section in keys.values() for key, value in section.items()}
    strategy, mix = merged.get("selection", "lfpc"), bool(merged.get("mix_data"))
    out = Layout(absolute(args.out or "runs/lfpc", root), strategy)
    stage1_overlays = [path for path in ablations if keys[path].get("stage") != 2]
    suffix = "" if strategy == "lfpc" else f"_{strategy}"
    stages = {"all": (1, 2), "1": (1,), "2": (2,)}[args.stage]
    if mix:
        stages = (1,)  # one stage on both data sets

    # ---- plans -----------------------------------------------------------------------------------------------
    data1 = out.data("mix" + suffix if mix else "stage1" + suffix)
    plan1 = stage_plan(args, recipe1, stage1_overlays, args.model_path, data1, out)
    actor, model2 = merged_model(plan1)
    plan2 = stage_plan(args, recipe2, ablations, str(model2), out.data("stage2"), out) if 2 in stages else None
    if 2 in stages and 1 not in stages and not args.dry_run and not (model2 / "config.json").is_file():
        raise UserError(
            f"Stage II starts from Stage I's merged checkpoint, and {model2} has none: run Stage I first (--stage 1 "
            f"or all), or merge its checkpoint: python3 {Path(args.easyr1_dir) / MERGER} --local_dir {actor}"
        )

    # ---- steps -----------------------------------------------------------------------------------------------
    steps1: list[Step] = []
    if 1 in stages:
        selection = Step("resolution selection", selection_command(args, plan1, out), out.selected_manifest)
        steps1.append(selection)
        if mix:
            manifest = out.data(f"mix{suffix}.jsonl")
            boxed = args.boxed_data or "$LFPC_BOXED_DATA"
            merge = ["merge-vqa", str(out.selected_manifest), str(boxed), "--out", str(manifest), "--equal"]
            steps1.append(Step("mix Stage I and boxed data 1:1", locus_data_cli(merge), manifest))
        else:
            manifest = out.selected_manifest
        steps1.append(
            Step("export Stage I data", export_command(manifest, data1, stage2=False), data1 / "export.json")
        )
    export2 = None
    if plan2 is not None:
        boxed = args.boxed_data or "$LFPC_BOXED_DATA"
        export2 = Step(
            "export Stage II data", export_command(boxed, plan2.data_dir, stage2=True), plan2.data_dir / "export.json"
        )

    # ---- every check that needs no GPU, both stages, before anything runs -------------------------------------
    print("== inputs", flush=True)
    inputs = []
    if 1 in stages:
        data = Path(args.data).expanduser().resolve() if args.data else None
        inputs.append(check_manifest("LFPC_DATA", data))
        if out.selected_manifest.is_file():  # a selection output from an earlier run: its views are checked too
            inputs.append(check_manifest("selection", out.selected_manifest))
    if plan2 is not None or mix:
        boxed_path = Path(args.boxed_data).expanduser().resolve() if args.boxed_data else None
        inputs.append(check_manifest("LFPC_BOXED_DATA", boxed_path, need_boxes=not mix))
    if plan2 is not None and 1 in stages:
        inputs.append(check_merger(Path(args.easyr1_dir), args.dry_run))
    for check in inputs:
        report(check)
    title1 = "Stage I (mixed data)" if mix else "Stage I"
    upfront = [(title1, plan1, LfpcStage(steps1[-1].command))] if 1 in stages else []
    if plan2 is not None:
        upfront.append(("Stage II", plan2, LfpcStage(export2.command, model_from="Stage I")))
    # fail fast: the first group with a failed check stops the rest (a bad input is reported once)
    ok = all(check.ok is not False for check in inputs)
    commands = {}
    for title, plan, stage in upfront:
        if ok:
            ok, commands[title] = run_checks(title, dataclasses.replace(plan, dry_run=True), stage)
    if ok and not args.dry_run:  # selection and training need them; a dry run skips the count
        gpus = check_gpus(plan1)
        report(gpus)
        ok = gpus.ok is not False
    if not ok:
        print("lfpc: checks failed; nothing was run", file=sys.stderr)
        return 1
    selection_pending = 1 in stages and not steps1[0].done() and "select-resolution" not in plugin_commands()
    if selection_pending and not args.dry_run:
        raise UserError("locus-data select-resolution is not installed here; install LOCUS (pip install -e .)")

    # ---- the pipeline ----------------------------------------------------------------------------------------
    print("== run" + (" (dry run: nothing is written or launched)" if args.dry_run else ""), flush=True)
    if selection_pending:
        print("   (locus-data select-resolution is not installed in this environment)", flush=True)
    for step in steps1 + ([export2] if export2 else []):
        execute(step, args.dry_run)
    if 1 in stages:
        train(title1, plan1, LfpcStage(steps1[-1].command), args.dry_run, commands)
    if plan2 is not None:
        if 1 in stages:
            actor, model2 = merged_model(plan1)  # after training: the step Stage I's tracker records
            plan2 = dataclasses.replace(plan2, model_path=str(model2))
            merger = [sys.executable, str(Path(args.easyr1_dir) / MERGER), "--local_dir", str(actor)]
            execute(Step("merge Stage I", merger, model2 / "config.json"), args.dry_run)
            if not args.dry_run and not (model2 / "config.json").is_file():
                raise UserError(f"the merge wrote no model at {model2} (see above)")
        train("Stage II", plan2, LfpcStage(export2.command), args.dry_run, commands)
    return 0


def train(title: str, plan: Plan, stage: LfpcStage, dry_run: bool, commands: dict[str, list[str]]) -> None:
    """Launch one stage (a dry run prints its command); the full preflight runs first, now that its data exist."""
    if dry_run:
        print(f"-- train {title}: {shlex.join(commands[title])}", flush=True)
        return
    passed, command = run_checks(title, plan, stage)
    if not passed:
        raise UserError(f"{title}: preflight failed (above); nothing was launched")
    write_config_file(plan)
    print(f"-- train {title}: {shlex.join(command)}", flush=True)
    if run_training(command, plan.root) != 0:
        raise UserError(f"{title} training failed (see above); re-run the same command to resume")


def run_training(command: list[str], cwd: Path) -> int:
    """Run one stage's EasyR1 command from the project root (where EasyR1 resolves what is left relative)."""
    return subprocess.run(command, cwd=cwd).returncode


if __name__ == "__main__":
    sys.exit(main())
