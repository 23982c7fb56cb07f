"""Preflight for the LOCUS launchers: every check that can fail a cluster run, before the cluster is used.

    python3 -m locus_train.preflight --recipe config/locus_qwen2_5_vl_7b.yaml [--dry-run] [key=value ...]

The launchers in examples/ call this with their environment variables. Each check is a small function returning a
:class:`Check` whose message names the fix (:mod:`~locus_train.preflight.checks`, and the ones that build or measure
data in :mod:`~locus_train.preflight.data_checks`); the run is planned once (:mod:`~locus_train.preflight.plan`) and
its commands are built in :mod:`~locus_train.preflight.commands`. This module runs the checks in order. When all
pass, the EasyR1 command is printed and (without ``--dry-run``) executed in place of this process. ``--dry-run`` runs
every check that needs no GPU, changes nothing on disk (a missing dataset or prompt-length report is reported with
the command that would make it) and prints the command.

Task ``lfpc`` checks an LFPC recipe (its ``lfpc:`` section, the crop-tool rules, its export, prompts with the agent's
system prompt) and builds our entry point's command; :mod:`locus_train.preflight.lfpc` runs the two LFPC stages.

Paths reach EasyR1 as absolute overrides on the command line: EasyR1 silently replaces a missing ``format_prompt``
or ``reward_function`` path with None, so each one is checked to exist here first.
"""

import argparse
import os
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from locus_agent.processor import ALLOW_FRAME_MISMATCH
from locus_train.easyr1.config import system_prompt_file
from locus_train.easyr1_config import PINNED_COMMIT, RecipeError, load_schema, with_overrides
from locus_train.preflight.checks import (
    Check,
    check_config,
    check_easyr1,
    check_files,
    check_frame,
    check_gpus,
    check_model,
    check_omegaconf,
    check_paths,
    check_real_easyr1_config,
    check_reward,
    easyr1_commit,
    lfpc_settings,
)
from locus_train.preflight.commands import (
    config_file,
    easyr1_command,
    measure_command,
    path_overrides,
    prompt_report_path,
    write_config_file,
)
from locus_train.preflight.data_checks import check_batch_fits, check_dataset, check_prompt_lengths, run_validate
from locus_train.preflight.lfpc_checks import check_lfpc_dataset, check_lfpc_reward, check_planned_model
from locus_train.preflight.plan import TASKS, LfpcStage, Plan, make_plan


__all__ = [
    "PINNED_COMMIT",
    "Check",
    "Plan",
    "check_easyr1",
    "check_gpus",
    "check_model",
    "check_prompt_lengths",
    "check_reward",
    "config_file",
    "easyr1_commit",
    "main",
    "make_plan",
    "measure_command",
    "parse_args",
    "path_overrides",
    "preflight",
    "prompt_report_path",
    "run_validate",
]
"""what the launchers and tests use; :func:`preflight` looks the checks up here, so a test may replace one"""

EXPENSIVE = ("dataset", "train size", "prompt lengths")
"""checks that may build or measure (minutes): they run only once every cheap check has passed"""


def preflight(
    plan: Plan,
    validate: Callable[[Path, int], subprocess.CompletedProcess] = run_validate,
    report: Callable[[Check], None] | None = None,
    stage: LfpcStage | None = None,
) -> tuple[list[Check], list[str]]:
    """Run the checks, cheap ones first; returns them and the EasyR1 command (meaningful when none failed).

    Every check that takes seconds runs and is reported (through ``report`` as it finishes) before anything is
    built or measured; if one failed, the building and measuring checks are skipped (a dry run builds and
    measures nothing, so there they still report what they would do). ``stage``: an LFPC stage's own checks
    (its export's command, where its model comes from; :mod:`locus_train.preflight.lfpc`), for ``task`` lfpc.
    """
    checks: list[Check] = []

    def add(check: Check) -> None:
        checks.append(check)
        if report is not None:
            report(check)

    add(check_omegaconf())
    add(check_easyr1())
    try:
        schema = load_schema()
        overrides = path_overrides(plan.raw, plan) + plan.overrides
        raw = with_overrides(plan.raw, overrides)
    except RecipeError as err:
        add(Check("config", False, str(err)))
        return checks, []
    check, cfg = check_config(raw, plan, schema)
    add(check)
    command = easyr1_command(plan, overrides)
    if cfg is None:
        return checks, command
    add(check_real_easyr1_config(raw))
    add(check_files(cfg, plan))
    lfpc = plan.task == "lfpc"
    add(check_planned_model(plan, stage.model_from) if lfpc and stage.model_from else check_model(plan))
    add(check_frame(cfg, plan))
    add(check_paths(plan))
    add(check_lfpc_reward(cfg) if lfpc else check_reward(cfg))
    add(check_gpus(plan))
    failed = [check.name for check in checks if check.ok is False]
    if failed and not plan.dry_run:
        for name in EXPENSIVE:
            add(Check(name, None, f"not run: fix {', '.join(failed)} first (nothing was built or measured)"))
        return checks, command
    if lfpc:
        add(check_lfpc_dataset(plan, cfg, validate, stage.producer))
        add(check_batch_fits(cfg))
        frame = cfg["worker"]["reward"]["reward_function_kwargs"]["coord_frame"]
        add(check_prompt_lengths(cfg, plan, system_prompt_file(lfpc_settings(plan), frame, plan.root)))
        return checks, command
    add(check_dataset(plan, validate))
    add(check_batch_fits(cfg))
    add(check_prompt_lengths(cfg, plan))
    return checks, command


def env_int(variable: str) -> Callable[[str], int]:
    """An argparse type for a count that usually comes from an environment variable: the error names both."""

    def parse(text: str) -> int:
        try:
            return int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid int value: {text!r} (set {variable} to an integer)") from None

    return parse


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="python -m locus_train.preflight", description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", required=True, help="training YAML under config/")
    parser.add_argument(
        "--task", choices=sorted(TASKS), default="cue_search", help="cue_search (2 images) or text_cue"
    )
    parser.add_argument("--model-path", default=env("MODEL_PATH"), help="checkpoint dir or hub id [$MODEL_PATH]")
    parser.add_argument("--coco-root", default=env("COCO_ROOT"), help="COCO root for building the data [$COCO_ROOT]")
    parser.add_argument("--data-dir", default=env("DATA_DIR"), help="dataset folder [$DATA_DIR]")
    parser.add_argument("--data-config", default=env("LOCUS_DATA_CONFIG"), help="data config [$LOCUS_DATA_CONFIG]")
    parser.add_argument(
        "--ablation", default=env("LOCUS_ABLATION"), help="overlay YAML(s), comma-separated [$LOCUS_ABLATION]"
    )
    # string defaults: argparse applies the type to them, so NNODES=two is a usage error naming the variable
    parser.add_argument("--nnodes", type=env_int("NNODES"), default=env("NNODES", "1"), help="nodes [$NNODES]")
    parser.add_argument(
        "--n-gpus-per-node",
        type=env_int("N_GPUS_PER_NODE"),
        default=env("N_GPUS_PER_NODE", "8"),
        help="[$N_GPUS_PER_NODE]",
    )
    parser.add_argument(
        ALLOW_FRAME_MISMATCH,
        action="store_true",
        help="launch even when MODEL_PATH's family writes boxes in another frame than the recipe's reward",
    )
    parser.add_argument("--dry-run", action="store_true", help="no GPU checks, no building, no launch")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="EasyR1 overrides, passed through")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        plan = make_plan(args)
    except RecipeError as err:
        print(f"preflight: {err}", file=sys.stderr)
        return 1
    checks, command = preflight(plan, report=lambda check: print(check.line(), flush=True))
    failed = [check for check in checks if check.ok is False]
    if plan.dry_run and command:
        print("command (dry run, not launched): " + shlex.join(command), flush=True)
    if failed:
        print(f"preflight: {len(failed)} check(s) failed; nothing was launched", file=sys.stderr)
        return 1
    if plan.dry_run:
        return 0
    print("command: " + shlex.join(command), flush=True)
    write_config_file(plan)
    os.chdir(plan.root)  # EasyR1 resolves what is left relative (checkpoints/, the config's own paths) from here
    os.execv(command[0], command)  # replaces this process: signals and the exit status belong to EasyR1
