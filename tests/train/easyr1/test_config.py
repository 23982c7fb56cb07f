"""Every shipped recipe and overlay through EasyR1's real PPOConfig, and the schema fixture regenerated from it."""

import subprocess
import sys
from pathlib import Path

import pytest

from locus_train.easyr1_config import PINNED_COMMIT, SCHEMA_PATH, compose, load_schema, resolve
from tests.testing_utils import require_easyr1

from ..conftest import ABLATIONS, RECIPES, REPO_ROOT
from .conftest import CUE_RECIPES, as_dict, easyr1_config, launcher_overrides


pytestmark = require_easyr1

# (recipe, overlays): every recipe alone, and every cue-search recipe with each ablation overlay
COMBINATIONS = [(recipe, []) for recipe in RECIPES] + [
    (recipe, [ablation]) for recipe in CUE_RECIPES for ablation in ABLATIONS
]


def combination_id(combination: tuple[Path, list[Path]]) -> str:
    recipe, ablations = combination
    return "+".join([recipe.stem, *(path.stem for path in ablations)])


@pytest.mark.parametrize("combination", COMBINATIONS, ids=combination_id)
def test_recipe_and_overlay_build_easyr1_ppo_config(combination, tmp_path):
    # EasyR1 builds, type-checks and post-inits the composed YAML plus the launcher's overrides, and resolves it to
    # exactly what LOCUS's schema fixture resolves it to (so the offline checks see what a run will see)
    recipe, ablations = combination
    overrides = launcher_overrides(recipe, ablations, tmp_path / "data", tmp_path / "model")
    overrides.append("trainer.total_epochs=2")  # a user's passthrough override, last as on the command line
    config = easyr1_config(recipe, ablations, overrides, post_init=False)
    raw, _ = compose(recipe, ablations, overrides)
    assert as_dict(config) == resolve(raw, load_schema())
    config.deep_post_init()
    # deep_post_init silently sets a missing path to None: both must survive as absolute files
    assert config.data.format_prompt == raw.data.format_prompt and Path(config.data.format_prompt).is_file()
    assert config.worker.reward.reward_function == str(REPO_ROOT / "locus_reward/cue_search.py")
    assert config.worker.reward.reward_function_name == "compute_score"
    assert config.worker.rollout.prompt_length == config.data.max_prompt_length
    assert config.worker.actor.use_kl_loss == config.algorithm.use_kl_loss
    assert config.trainer.total_epochs == 2


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_reward_pixel_limits_follow_cli_overrides(recipe):
    # the reward's frame must come from the pixel limits the images went through, also when they are overridden
    config = easyr1_config(recipe, overrides=["data.min_pixels=4096", "data.max_pixels=200704"])
    kwargs = config.worker.reward.reward_function_kwargs
    assert (kwargs["min_pixels"], kwargs["max_pixels"]) == (4096, 200704)
    assert (config.data.min_pixels, config.data.max_pixels) == (4096, 200704)


def test_schema_fixture_regenerates_identically_from_the_installed_easyr1():
    # the committed fixture the CPU checks rely on is what generate.py reads from the installed EasyR1 source
    import importlib.metadata

    import verl

    from locus_train.preflight import easyr1_commit

    commit = easyr1_commit(importlib.metadata.distribution("verl"))
    assert commit == PINNED_COMMIT
    source_root = Path(verl.__file__).resolve().parents[1]  # generate.py reads verl/... below this folder
    generated = subprocess.run(
        [sys.executable, str(REPO_ROOT / "locus_train/easyr1_schema/generate.py"), "--easyr1", str(source_root)]
        + ["--commit", commit],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert generated == SCHEMA_PATH.read_text(encoding="utf-8")
