"""What one preflight is about, resolved once from the launcher's arguments: the :class:`Plan`.

The recipe and its ablation overlays are composed here, once; the checks and the commands read the plan.
"""

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from locus_train.easyr1_config import RecipeError, compose
from locus_train.recipe import EASYR1_SECTIONS, recipe_root


DEFAULT_DATA_CONFIG = "config/data/locus_default.yaml"
TASKS = {"cue_search": 2, "text_cue": 1}  # images per prompt


@dataclass
class Plan:
    """Everything the checks need, resolved once from the arguments."""

    root: Path
    """the project root the recipe's relative paths start from (:func:`locus_train.recipe.recipe_root`)"""
    recipe: Path
    ablations: list[Path]
    raw: Any
    """the recipe with its ablation overlays, unresolved: composed once, here (the launch adds only overrides)"""
    overrides: list[str]
    task: str
    model_path: str
    data_dir: Path
    data_config: Path
    coco_root: Path | None
    nnodes: int
    n_gpus_per_node: int
    dry_run: bool
    allow_frame_mismatch: bool = False
    """run a checkpoint whose family writes boxes in another frame than the recipe's reward (on purpose)"""


def absolute(path: str | Path, root: Path) -> Path:
    path = Path(path).expanduser()
    return path if path.is_absolute() else (root / path).resolve()


def from_cwd(path: str | Path) -> Path:
    """A path the user typed (DATA_DIR, COCO_ROOT, --data-dir): relative ones start at the working directory."""
    return Path(path).expanduser().resolve()


def make_plan(args: argparse.Namespace) -> Plan:
    recipe = Path(args.recipe).expanduser().resolve()
    root = recipe_root(recipe)
    ablations = [absolute(p, root) for p in (args.ablation or "").replace(",", " ").split()]
    raw, locus = compose(recipe, ablations)
    sections = set(raw)
    if not sections & EASYR1_SECTIONS:
        trl = {"grpo", "reward", "model"} & sections
        kind = "a TRL recipe: run it with locus-train trl --config" if trl else "not an EasyR1 training recipe"
        raise RecipeError(
            f"{recipe} is {kind} (no {'/'.join(sorted(EASYR1_SECTIONS))} sections); the launchers' --recipe is one "
            "of config/locus_*.yaml"
        )
    recipe_data_dir = absolute(Path(str(raw.data.train_files)).parent, root)
    return Plan(
        root=root,
        recipe=recipe,
        ablations=ablations,
        raw=raw,
        overrides=args.overrides,
        task=args.task,
        model_path=args.model_path or str(raw.worker.actor.model.model_path),
        data_dir=from_cwd(args.data_dir)
        if args.data_dir
        else absolute(locus.get("data_dir") or recipe_data_dir, root),
        data_config=absolute(args.data_config or locus.get("data_config") or DEFAULT_DATA_CONFIG, root),
        coco_root=from_cwd(args.coco_root) if args.coco_root else None,
        nnodes=args.nnodes,
        n_gpus_per_node=args.n_gpus_per_node,
        dry_run=args.dry_run,
        allow_frame_mismatch=getattr(args, "allow_frame_mismatch", False),
    )
