"""Fixtures for the tests that run EasyR1's own code (skipped where EasyR1 is not installed).

The import stand-ins of :mod:`locus_train.easyr1.standins` are put into ``sys.modules`` for these tests only; every
``verl`` module (and every module of ours that imported it) is dropped again afterwards, so the rest of the suite sees
the plain environment.
"""

import dataclasses
import sys
from pathlib import Path
from typing import Any

import pytest

from locus_train.easyr1 import standins

from ..conftest import REPO_ROOT


# recipe -> tiny checkpoint that shares its processor class and chat-template style
BACKBONE = {
    "locus_qwen2_5_vl_7b": "qwen2_5_vl",
    "locus_mimo_vl_7b": "qwen2_5_vl",
    "locus_qwen3_vl_4b": "qwen3_vl_thinking",
}
CUE_RECIPES = sorted(REPO_ROOT / "config" / f"{stem}.yaml" for stem in BACKBONE)
DEMO_TRAIN_ROWS = 128  # the recipes' rollout_batch_size: preflight refuses a train split smaller than one batch


# our modules that never import verl (the others subclass its classes and go with it)
KEPT = {"locus_train.easyr1.config", "locus_train.easyr1.standins"}


@pytest.fixture(scope="package", autouse=True)
def easyr1_standins():
    before = set(sys.modules)
    with pytest.MonkeyPatch.context() as patch:
        for name, module in standins.modules().items():
            patch.setitem(sys.modules, name, module)
        yield
    for name in set(sys.modules) - before:
        if (name == "verl" or name.startswith(("verl.", "locus_train.easyr1."))) and name not in KEPT:
            del sys.modules[name]  # they hold references to the stand-ins


@pytest.fixture(scope="package")
def synthetic_coco(tmp_path_factory) -> Path:
    from locus_data.synth import synth

    root = tmp_path_factory.mktemp("easyr1_coco")
    synth(root, 40, seed=0, progress=False)
    return root


def locus_data_build(coco: Path, out: Path, num_train: int, num_val: int) -> Path:
    """A real `locus-data build` with the default data config: OUT/{train,val}.parquet."""
    from locus_data.build import Sources, build
    from locus_data.config import load_config

    cfg = load_config(REPO_ROOT / "config/data/locus_default.yaml", [f"num_train={num_train}", f"num_val={num_val}"])
    build(cfg, Sources.from_args(str(coco), None, None), out, workers=0, progress=False)
    return out


@pytest.fixture(scope="package")
def demo_data(synthetic_coco, tmp_path_factory) -> Path:
    """Large enough for a launch: one full rollout batch of train prompts."""
    return locus_data_build(synthetic_coco, tmp_path_factory.mktemp("easyr1_demo") / "data", DEMO_TRAIN_ROWS, 8)


@pytest.fixture(scope="package")
def small_data(synthetic_coco, tmp_path_factory) -> Path:
    """A few rows of each split, for the tests that process every row through EasyR1 (kept fast)."""
    return locus_data_build(synthetic_coco, tmp_path_factory.mktemp("easyr1_small") / "data", 16, 8)


@pytest.fixture(scope="package")
def checkpoints(tiny_qwen2_5_vl, tiny_qwen3_vl_thinking) -> dict[str, Path]:
    return {"qwen2_5_vl": tiny_qwen2_5_vl, "qwen3_vl_thinking": tiny_qwen3_vl_thinking}


def launcher_overrides(recipe: Path, ablations: list[Path], data_dir: Path, model: Path | str) -> list[str]:
    """The CLI overrides the launcher passes (absolute data, format-prompt, reward and model paths)."""
    from locus_train.easyr1_config import compose
    from locus_train.preflight import make_plan, parse_args, path_overrides

    argv = ["--recipe", str(recipe), "--data-dir", str(data_dir), "--model-path", str(model), "--dry-run"]
    if ablations:
        argv += ["--ablation", ",".join(str(path) for path in ablations)]
    plan = make_plan(parse_args(argv))
    return path_overrides(compose(recipe, ablations)[0], plan)


def easyr1_config(recipe: Path, ablations: list[Path] = (), overrides: list[str] = (), post_init: bool = True) -> Any:
    """EasyR1's PPOConfig as ``verl.trainer.main`` builds it: structured defaults <- YAML <- CLI overrides."""
    from omegaconf import OmegaConf
    from verl.trainer.config import PPOConfig

    from locus_train.easyr1_config import compose

    yaml_layer, _ = compose(recipe, list(ablations))  # what preflight writes as the config file EasyR1 loads
    merged = OmegaConf.merge(OmegaConf.structured(PPOConfig()), yaml_layer, OmegaConf.from_dotlist(list(overrides)))
    config = OmegaConf.to_object(merged)
    if post_init:
        config.deep_post_init()
    return config


def as_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


@pytest.fixture(scope="package")
def lfpc_data(tmp_path_factory) -> Path:
    """LFPC rows as export-lfpc writes them: 4 questions, half-size views, nested boxes."""
    from .lfpc_rows import write_lfpc_data

    return write_lfpc_data(tmp_path_factory.mktemp("lfpc") / "data")
