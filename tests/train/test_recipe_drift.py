"""Each EasyR1 recipe is one self-contained YAML (EasyR1 takes one file), so recipes repeat each other on purpose.

What keeps the copies honest: every recipe names its reference recipe and exactly the keys in which it differs from
it, each with the reason. A key changed in one copy and not the others (a learning rate, a batch size, a reward
option) is a drift this test fails on; a deliberate difference is added below with its reason.

A new recipe is one more entry: its reference (``locus_qwen2_5_vl_7b.yaml`` for a new backbone, a stage-1 recipe
for its stage 2) and its differences.
"""

from typing import Any

import pytest
from omegaconf import OmegaConf

from .conftest import REPO_ROOT


CONFIG = REPO_ROOT / "config"
PRIMARY = "locus_qwen2_5_vl_7b.yaml"
"""the paper's primary run: the reference of every backbone and of the ablation recipes"""

DIFFERENCES: dict[str, tuple[str, dict[str, str]]] = {
    "locus_mimo_vl_7b.yaml": (
        PRIMARY,
        {
            "worker.actor.model.model_path": "the backbone",
            "trainer.experiment_name": "the run's name",
            "data.format_prompt": "MiMo-VL's prompt: it opens its own <think> block and may leave it empty",
            "data.max_response_length": "MiMo-VL reasons at length: 4096 response tokens",
        },
    ),
    "locus_qwen3_vl_4b.yaml": (
        PRIMARY,
        {
            "worker.actor.model.model_path": "the backbone",
            "trainer.experiment_name": "the run's name",
            "data.format_prompt": "Qwen3-VL-Thinking's prompt: 0-1000 coordinates, the template opens <think>",
            "data.max_response_length": "a thinking model: 8192 response tokens",
            "worker.rollout.max_num_batched_tokens": "must hold max_prompt_length + the longer responses (9728)",
            "worker.reward.reward_function_kwargs.coord_frame": "Qwen3-VL writes relative 0-1000 coordinates",
            "worker.reward.reward_function_kwargs.think_prefilled": "the chat template pre-opens <think>",
        },
    ),
    "locus_text_cue_qwen2_5_vl_7b.yaml": (
        PRIMARY,
        {
            "trainer.experiment_name": "the run's name",
            "data.train_files": "the text-cue dataset (locus-data export-text-cue), not the cue-search one",
            "data.val_files": "the text-cue dataset's validation split",
            "data.format_prompt": "the text-cue prompt: the cue is a referring expression, not an image",
            "data.max_prompt_length": "one image per prompt instead of two: a smaller prompt budget",
            "worker.rollout.limit_images": "one image per prompt",
        },
    ),
    "lfpc_stage2_qwen2_5_vl_7b.yaml": (
        "lfpc_stage1_qwen2_5_vl_7b.yaml",
        {
            "worker.actor.model.model_path": "Stage II starts from Stage I's merged checkpoint (the launcher's)",
            "worker.actor.optim.lr": "Table 12: 5e-7 in Stage II, 1e-6 in Stage I",
            "worker.reward.reward_function": "Stage II adds the grounding reward (compute_score_stage2)",
            "data.train_files": "the boxed set's export (--view original --require-boxes), not the selected one",
            "data.val_files": "the boxed set's validation split",
            "trainer.experiment_name": "the run's name",
        },
    ),
}
"""recipe -> (its reference recipe, {dotted key that differs: why}); ``lfpc_stage1_qwen2_5_vl_7b.yaml`` is a reference
only: it shares no training setup with the LOCUS recipes (Table 12 against the LOCUS paper's)"""


def _leaves(node: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted key -> value of every leaf (lists are leaves; interpolations stay as written)."""
    if not isinstance(node, dict) or not node:
        return {prefix.rstrip("."): node}
    leaves = {}
    for key, value in node.items():
        leaves.update(_leaves(value, f"{prefix}{key}."))
    return leaves


def _recipe(name: str) -> dict[str, Any]:
    return _leaves(OmegaConf.to_container(OmegaConf.load(CONFIG / name), resolve=False))


def test_every_recipe_states_its_reference():
    # a recipe added without an entry here would never be compared with anything
    references = {reference for reference, _ in DIFFERENCES.values()}
    listed = set(DIFFERENCES) | references
    assert {path.name for path in CONFIG.glob("*.yaml")} == listed
    assert references <= {path.name for path in CONFIG.glob("*.yaml")}


@pytest.mark.parametrize("recipe", sorted(DIFFERENCES), ids=lambda name: name.removesuffix(".yaml"))
def test_recipe_differs_from_its_reference_exactly_where_stated(recipe):
    # the copies must move together: any other difference is a drift (or a new deliberate one, to list above)
    reference, reasons = DIFFERENCES[recipe]
    mine, theirs = _recipe(recipe), _recipe(reference)
    missing = "<not set>"
    differing = {key for key in mine.keys() | theirs.keys() if mine.get(key, missing) != theirs.get(key, missing)}
    assert {key: (theirs.get(key, missing), mine.get(key, missing)) for key in differing - reasons.keys()} == {}
    assert sorted(reasons.keys() - differing) == []  # a stated difference that is gone: drop its line
    assert all(reason.strip() for reason in reasons.values())
