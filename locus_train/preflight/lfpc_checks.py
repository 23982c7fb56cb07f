"""The checks an LFPC stage needs beyond the LOCUS ones: its VQA manifests, its export, its reward, its model.

The config rules are :func:`locus_train.preflight.checks.lfpc_rule_errors` (``lfpc:`` section, pixel policy,
budgets); the order the checks run in, and the stages, are :mod:`locus_train.preflight.lfpc`'s.
"""

import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from locus_data.config import SPLITS, split_path
from locus_data.errors import UserError
from locus_data.rows import read_batches
from locus_reward.lfpc_ground_truth import dumps, loads
from locus_reward.options import LfpcOptions
from locus_train.easyr1.config import is_stage2
from locus_train.preflight.checks import Check, check_model, score_right_and_empty
from locus_train.preflight.plan import TASKS, Plan


def check_manifest(name: str, path: Path | None, need_boxes: bool = False, decode: int = 8) -> Check:
    """A VQA manifest the launcher reads (``name``: its environment variable): present, valid per ``locus-data
    validate`` (ids, images, answers, nested boxes, a view image no larger than its original) and, for Stage II data,
    every question with nested boxes. One line: the first problem and how many more."""
    from locus_data.vqa import check_manifest as validate_manifest
    from locus_data.vqa import read_manifest

    if path is None:
        return Check(name, False, f"{name} is not set; point it at a VQA manifest (docs/lfpc.md, Data)")
    if not path.exists():
        return Check(name, False, f"{name}={path} does not exist")
    try:
        report = validate_manifest(path, decode=decode, progress=False)
    except UserError as err:
        return Check(name, False, f"{name}={path}: {err}")
    if not report.ok:
        kind, wheres = next(iter(report.problems.items()))
        more = sum(len(v) for v in report.problems.values()) - 1
        tail = f" (and {more} more; locus-data validate {path})" if more else ""
        return Check(name, False, f"{name}={path}: {kind}: {wheres[0]}{tail}")
    items = read_manifest(path)
    if need_boxes:
        unboxed = [item.id for item in items if not item.boxes]
        if unboxed:
            return Check(
                name,
                False,
                f"{name}={path}: {len(unboxed)} of {len(items)} questions have no boxes (e.g. {unboxed[0]!r}); a "
                "Stage II recipe (compute_score_stage2) trains grounding on nested GT boxes: add them "
                "(locus-data add-boxes) or leave those questions out",
            )
    views = sum(item.view_image is not None for item in items)
    return Check(name, True, f"{path}: {len(items)} questions valid, {views} with a selected view")


def check_planned_model(plan: Plan, producer: str) -> Check:
    """The model an earlier stage writes (``producer`` says which): in a dry run it need not exist yet."""
    if plan.dry_run and not Path(plan.model_path).exists():
        return Check("model", None, f"{plan.model_path}: {producer}'s planned output (dry run; not required yet)")
    return check_model(plan)


def sample_ground_truth(cfg: dict[str, Any]) -> str:
    """The first validation answer, or a synthetic one (with nested boxes) before the export exists."""
    path = Path(cfg["data"]["val_files"])
    if path.is_file():
        answer_key = cfg["data"]["answer_key"]
        return next(read_batches(path, [answer_key], limit=1)).column(answer_key)[0].as_py()
    boxes = [[200.0, 150.0, 240.0, 190.0], [160.0, 110.0, 320.0, 250.0]]
    return dumps("A", 640, 480, view_width=320, view_height=240, choices=["red", "blue"], boxes=boxes)


def check_lfpc_reward(cfg: dict[str, Any]) -> Check:
    """The LFPC reward scores a right answer above an empty one, with accuracy 1."""
    name = cfg["worker"]["reward"]["reward_function"].rsplit(":", 1)[1]
    gt_text = sample_ground_truth(cfg)
    options = LfpcOptions.from_kwargs(cfg["worker"]["reward"]["reward_function_kwargs"])
    think = "" if options.think_prefilled else "<think>"
    right = f"{think}It is there.</think><answer>{loads(gt_text).answer}</answer>"
    scores = score_right_and_empty(cfg, right, gt_text)
    if isinstance(scores, Check):
        return scores
    if scores[0].get("accuracy") != 1 or not scores[0]["overall"] > scores[1]["overall"]:
        return Check("reward", False, f"a right answer scored {scores[0]} and no answer {scores[1]}: check the kwargs")
    right, none = scores[0]["overall"], scores[1]["overall"]
    return Check("reward", True, f"{name}: a right answer scores {right:.2f}, none {none:.2f}")


def check_lfpc_dataset(
    plan: Plan, cfg: dict[str, Any], validate: Callable[[Path, int], subprocess.CompletedProcess], producer: list[str]
) -> Check:
    """The stage's export (``producer`` writes it): present, valid per ``locus-data validate``, and under a Stage II
    recipe every row with nested boxes (the launcher checks the manifest first; this catches a stale export)."""
    files = [split_path(plan.data_dir, split) for split in SPLITS]
    if not all(path.is_file() for path in files):
        if plan.dry_run:
            return Check("dataset", None, f"{plan.data_dir} not written yet; would run: {shlex.join(producer)}")
        return Check("dataset", False, f"{plan.data_dir} has no train/val.parquet; write it: {shlex.join(producer)}")
    result = validate(plan.data_dir, TASKS[plan.task])
    if result.returncode != 0:
        tail = (result.stdout or "").strip().splitlines()[-4:] + (result.stderr or "").strip().splitlines()[-4:]
        return Check("dataset", False, f"`locus-data validate {plan.data_dir}` failed: {' | '.join(tail)}")
    if is_stage2(cfg["worker"]["reward"]["reward_function"]) and not plan.launch.get("mix_data"):
        answer_key = cfg["data"]["answer_key"]
        for path in files:
            unboxed = sum(
                not loads(answer).boxes
                for batch in read_batches(path, [answer_key])
                for answer in batch.column(answer_key).to_pylist()
            )
            if unboxed:
                return Check(
                    "dataset",
                    False,
                    f"{path}: {unboxed} rows have no boxes; a Stage II recipe (compute_score_stage2) trains "
                    "grounding on nested GT boxes: export with locus-data export-lfpc --require-boxes",
                )
    return Check("dataset", True, f"{plan.data_dir} valid")
