"""The commands a preflight prints or runs: EasyR1's (with absolute paths), and the data tools' it would run.

Paths reach EasyR1 as absolute overrides on the command line: EasyR1 silently replaces a missing ``format_prompt``
or ``reward_function`` path with None, so the checks make sure each one exists first.
"""

import sys
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from locus_data.config import SPLITS, split_path
from locus_train.preflight.plan import Plan, absolute
from locus_train.prompt_report import report_path


def path_overrides(raw: Any, plan: Plan) -> list[str]:
    """Absolute paths for everything EasyR1 opens, plus the launcher's model and GPU layout."""
    reward_path, reward_name = str(raw.worker.reward.reward_function).rsplit(":", 1)
    overrides = [
        f"data.train_files={split_path(plan.data_dir, SPLITS[0])}",
        f"data.val_files={split_path(plan.data_dir, SPLITS[1])}",
        f"data.format_prompt={absolute(raw.data.format_prompt, plan.root)}",
        f"worker.reward.reward_function={absolute(reward_path, plan.root)}:{reward_name}",
        f"worker.actor.model.model_path={plan.model_path}",
        f"trainer.nnodes={plan.nnodes}",
        f"trainer.n_gpus_per_node={plan.n_gpus_per_node}",
    ]
    if plan.ablations:
        stems = "_".join(path.stem for path in plan.ablations)
        overrides.append(f"trainer.experiment_name={raw.trainer.experiment_name}_{stems}")
    return overrides


def easyr1_command(plan: Plan, overrides: list[str]) -> list[str]:
    """EasyR1's training command: the config file it loads, then the overrides."""
    return [sys.executable, "-m", "verl.trainer.main", f"config={config_file(plan)}", *overrides]


def config_file(plan: Plan) -> Path:
    """The YAML EasyR1 loads: the recipe itself, or recipe + ablation overlays written under runs/."""
    if not plan.ablations:
        return plan.recipe
    name = "_".join([plan.recipe.stem, *(path.stem for path in plan.ablations)])
    return plan.root / "runs" / name / "easyr1_config.yaml"


def write_config_file(plan: Plan) -> None:
    """Write the composed recipe + overlays (only when launching; interpolations stay for EasyR1 to resolve)."""
    if not plan.ablations:
        return
    out = config_file(plan)
    out.parent.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(plan.raw, out)


def locus_data_cli(args: list[str]) -> list[str]:
    """``locus-data ARGS`` run by this interpreter, which has LOCUS installed even when its bin/ is not on PATH."""
    return [sys.executable, "-m", "locus_data.cli", *args]


def build_command(plan: Plan) -> list[str]:
    if plan.task == "text_cue":
        return [
            "locus-data",
            "export-text-cue",
            "--data",
            "<cue-search dataset>",
            "--annotations",
            "<refexps.jsonl>",
            "--out",
            str(plan.data_dir),
        ]
    command = ["locus-data", "build", "--config", str(plan.data_config), "--out", str(plan.data_dir)]
    if plan.coco_root is not None:
        command[4:4] = ["--coco-root", str(plan.coco_root)]
    return command


def prompt_report_path(plan: Plan) -> Path:
    # the one name measure-prompts writes by default (its report records the recipe settings it was measured with)
    return report_path(plan.data_dir)


def measure_command(cfg: dict[str, Any], plan: Plan) -> list[str]:
    data = cfg["data"]
    return [
        sys.executable, "-m", "locus_train.prompt_lengths", str(plan.data_dir), "--model", plan.model_path,
        "--format-prompt", data["format_prompt"], "--min-pixels", str(data["min_pixels"]),
        "--max-pixels", str(data["max_pixels"]), "--max-prompt-length", str(data["max_prompt_length"]),
        "--report", str(prompt_report_path(plan)), "--quiet",
    ]  # fmt: skip
