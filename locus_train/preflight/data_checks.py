"""The checks that may build or measure data (minutes): the dataset, its size, and its prompt lengths.

A dry run builds and measures nothing: a missing dataset or prompt-length report is reported with the command that
would make it (:mod:`locus_train.preflight.commands`).
"""

import os
import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from locus_agent.conversation import with_tool_schema
from locus_data.config import SPLITS, split_path
from locus_data.errors import UserError
from locus_data.rows import count_rows
from locus_train.preflight.checks import Check
from locus_train.preflight.commands import build_command, locus_data_cli, measure_command, prompt_report_path
from locus_train.preflight.plan import TASKS, Plan
from locus_train.prompt_report import PromptLengthReport, sha256


def run_validate(data_dir: Path, num_images: int) -> subprocess.CompletedProcess:
    command = locus_data_cli(["validate", str(data_dir), "--images", str(num_images), "--quiet"])
    return subprocess.run(command, capture_output=True, text=True)


def check_dataset(plan: Plan, validate: Callable[[Path, int], subprocess.CompletedProcess]) -> Check:
    """train/val.parquet present (built from COCO_ROOT when missing) and valid per `locus-data validate`."""
    files = [split_path(plan.data_dir, split) for split in SPLITS]
    folders = [path for path in files if path.is_dir()]
    if folders:
        return Check("dataset", False, f"{folders[0]} is a directory, not a Parquet file; rebuild DATA_DIR")
    if not all(path.is_file() for path in files):
        command = shlex.join(build_command(plan))
        if plan.task == "text_cue":
            return Check("dataset", False, f"{plan.data_dir} has no train/val.parquet; build it with: {command}")
        if plan.coco_root is None or not plan.coco_root.is_dir():
            return Check(
                "dataset",
                False,
                f"{plan.data_dir} is not built and COCO_ROOT={plan.coco_root} is not a "
                f"directory; set COCO_ROOT (folder with annotations/ and train2014/) or build it: {command}",
            )
        if plan.dry_run:
            return Check("dataset", None, f"{plan.data_dir} not built yet; would run: {command}")
        print(f"building the dataset: {command}", flush=True)
        if subprocess.run(locus_data_cli(build_command(plan)[1:])).returncode != 0:
            return Check("dataset", False, f"`{command}` failed (see above)")
    result = validate(plan.data_dir, TASKS[plan.task])
    if result.returncode != 0:
        tail = (result.stdout or "").strip().splitlines()[-5:] + (result.stderr or "").strip().splitlines()[-5:]
        return Check(
            "dataset",
            False,
            f"`locus-data validate {plan.data_dir}` failed: {' | '.join(tail)}; "
            f"rebuild with: {shlex.join(build_command(plan))}",
        )
    return Check("dataset", True, f"{plan.data_dir} valid")


def check_batch_fits(cfg: dict[str, Any]) -> Check:
    """At least one full rollout batch in train (EasyR1's loader drops the last partial batch)."""
    path = Path(cfg["data"]["train_files"])
    if not path.is_file():
        return Check("train size", None, f"{path} not built yet")
    rows = count_rows(path)
    batch = cfg["data"]["rollout_batch_size"]
    if rows < batch:
        return Check("train size", False, f"{rows} train rows < data.rollout_batch_size {batch}: zero steps")
    return Check("train size", True, f"{rows} rows = {rows // batch} steps per epoch of {batch} prompts")


def check_prompt_lengths(cfg: dict[str, Any], plan: Plan, system_prompt: Path | None = None) -> Check:
    """With filter_overlong_prompts off, an offline measurement must show every prompt within the budget.

    ``system_prompt``: the file every prompt opens with (an LFPC run's, tool schema included), measured too."""
    data = cfg["data"]
    if data["filter_overlong_prompts"]:
        return Check("prompt lengths", None, "EasyR1 filters overlong prompts at startup (slow on large sets)")
    report_path = prompt_report_path(plan)
    command = measure_command(cfg, plan, system_prompt)
    if not report_path.is_file():
        if plan.dry_run or not split_path(plan.data_dir, SPLITS[0]).is_file():
            return Check("prompt lengths", None, f"not measured yet; would run: {shlex.join(command)}")
        print(f"measuring prompt lengths: {shlex.join(command)}", flush=True)
        # the model check found the processor locally: the measurement must not wait on hub retries either
        subprocess.run(command, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        if not report_path.is_file():
            return Check("prompt lengths", False, f"`{shlex.join(command)}` wrote no report")
    try:
        report = PromptLengthReport.read(report_path)
    except UserError as err:
        return Check("prompt lengths", False, str(err))
    format_prompt = Path(data["format_prompt"]).read_text(encoding="utf-8") if data["format_prompt"] else None
    system = with_tool_schema(system_prompt.read_text(encoding="utf-8")) if system_prompt is not None else None
    stale = report.stale(
        min_pixels=data["min_pixels"],
        max_pixels=data["max_pixels"],
        model=plan.model_path,
        format_prompt_sha256=sha256(format_prompt),
        system_prompt_sha256=sha256(system),
        limit=None,
    )
    # a split rebuilt in place keeps its path: its row count tells the old report apart
    for split, path in zip(SPLITS, (data["train_files"], data["val_files"])):
        measured = report.splits.get(split)
        if measured is not None and Path(path).is_file() and measured.rows != count_rows(Path(path)):
            stale.append(f"{split} rows")
    if stale:
        return Check(
            "prompt lengths",
            False,
            f"{report_path} was measured with other {stale}; delete it and re-run, or measure: {shlex.join(command)}",
        )
    longest = report.longest
    if longest > data["max_prompt_length"]:
        return Check(
            "prompt lengths",
            False,
            f"longest prompt has {longest} tokens > data.max_prompt_length "
            f"{data['max_prompt_length']}: raise it, or drop those rows with --write-filtered "
            f"(`{shlex.join(command)} --write-filtered DIR`) and train on DIR",
        )
    return Check("prompt lengths", True, f"longest prompt {longest} <= {data['max_prompt_length']} tokens")
