"""What one preflight is about, resolved once from the launcher's arguments: the :class:`Plan`.

The recipe and its ablation overlays are composed here, once; the checks and the commands read the plan.
"""

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from locus_train.easyr1.config import LFPC_SECTION
from locus_train.easyr1_config import LFPC_LAUNCH_KEYS, compose
from locus_train.recipe import EASYR1_SECTIONS, RecipeError, recipe_root


DEFAULT_DATA_CONFIG = "config/data/locus_default.yaml"
TASKS = {"cue_search": 2, "text_cue": 1, "lfpc": 1}  # images per prompt (lfpc: the view; crops come in the rollout)


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
    lfpc: dict[str, Any] | None = None
    """task lfpc: the recipe's (and overlays') ``lfpc:`` section, taken out of ``raw``; None for LOCUS recipes"""
    lfpc_overrides: list[str] = field(default_factory=list)
    """task lfpc: the ``lfpc.<key>=value`` overrides (``overrides`` keeps the EasyR1 ones)"""
    checkpoint_dir: Path | None = None
    """task lfpc: ``trainer.save_checkpoint_path`` (each stage's checkpoints under LFPC_OUT)"""
    launch: dict[str, Any] = field(default_factory=dict)
    """the overlays' merged ``locus:`` section (LFPC: selection, stage, mix_data)"""


@dataclass
class LfpcStage:
    """What an LFPC stage's preflight needs to know about the stages around it."""

    producer: list[str]
    """the command that writes the stage's export (printed when it is missing)"""
    model_from: str | None = None
    """the earlier stage whose output the model is (in a dry run it need not exist yet); None: MODEL_PATH"""


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
    section, overrides = None, list(args.overrides)
    if args.task == "lfpc":
        section = OmegaConf.to_container(raw.pop(LFPC_SECTION)) if LFPC_SECTION in raw else None
        if section is None:
            raise RecipeError(f"{recipe} has no `{LFPC_SECTION}:` section; it is not an LFPC recipe")
        prefix = f"{LFPC_SECTION}."
        lfpc_overrides = [item for item in overrides if item.startswith(prefix)]
        overrides = [item for item in overrides if not item.startswith(prefix)]
    else:
        if LFPC_SECTION in raw:
            raise RecipeError(f"{recipe} is an LFPC recipe (`{LFPC_SECTION}:` section): launch it with "
                              "examples/lfpc_qwen2_5_vl_7b.sh")  # fmt: skip
        lfpc_overrides = []
        lfpc_keys = sorted(set(locus) & set(LFPC_LAUNCH_KEYS))
        if lfpc_keys:
            raise RecipeError(f"`locus:` keys {lfpc_keys} are for LFPC overlays (LFPC_ABLATION), not LOCUS recipes")
    recipe_data_dir = absolute(Path(str(raw.data.train_files)).parent, root)
    return Plan(
        root=root,
        recipe=recipe,
        ablations=ablations,
        raw=raw,
        overrides=overrides,
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
        lfpc=section,
        lfpc_overrides=lfpc_overrides,
        checkpoint_dir=absolute(args.checkpoint_dir, root) if getattr(args, "checkpoint_dir", None) else None,
        launch=locus,
        allow_frame_mismatch=getattr(args, "allow_frame_mismatch", False),
    )
