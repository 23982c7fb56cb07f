"""The shipped LFPC recipes and overlays: valid EasyR1 (b44b311) configs with an ``lfpc:`` section that passes its
rules, Table 12's values, the pixel policy and the response budget's arithmetic. No EasyR1 import: the schema
fixture and :func:`locus_train.easyr1.config.lfpc_errors` are what preflight runs where EasyR1 is not installed."""

import pytest
from omegaconf import OmegaConf

from locus_reward.options import LfpcOptions
from locus_train.easyr1.config import LFPC_SECTION, crop_tokens, is_stage2, lfpc_errors, read_lfpc
from locus_train.easyr1_config import (
    LFPC_LAUNCH_KEYS,
    compose,
    load_schema,
    resolve,
    reward_errors,
    schema_errors,
    startup_errors,
)

from .conftest import LFPC_ABLATIONS, LFPC_RECIPES, REPO_ROOT


SCHEMA = load_schema()
QWEN2_5_VL_PROCESSOR_MAX_PIXELS = 12845056  # Qwen2.5-VL's preprocessor_config max_pixels
TOOL_TURN_TEXT = 70  # tokens of a tool turn's text around its crop (role markers, the zoom message)


def easyr1_and_lfpc(recipe, ablations=(), overrides=()):
    """(EasyR1 config without the section, resolved config, the section read) as the entry point splits them."""
    raw, launch = compose(recipe, list(ablations), list(overrides))
    section = OmegaConf.to_container(raw.pop(LFPC_SECTION))
    return raw, resolve(raw, SCHEMA), read_lfpc([section]), launch


def test_both_stages_ship():
    # the launcher's Stage I recipe names its Stage II by the stage number
    assert [path.name for path in LFPC_RECIPES] == ["lfpc_stage1_qwen2_5_vl_7b.yaml", "lfpc_stage2_qwen2_5_vl_7b.yaml"]


@pytest.mark.parametrize("recipe", LFPC_RECIPES, ids=lambda p: p.stem)
def test_recipe_is_valid_easyr1_plus_a_valid_lfpc_section(recipe):
    # EasyR1 never sees `lfpc:` (our entry point removes it); everything else is its own schema, and the section
    # with the EasyR1 keys satisfies every LFPC rule (pixel policy, limit_images, per-turn <= total budget)
    raw, cfg, lfpc, launch = easyr1_and_lfpc(recipe)
    assert schema_errors(raw, SCHEMA) == [] and launch == {}
    assert lfpc_errors(lfpc, cfg, REPO_ROOT) == [] and reward_errors(raw, cfg) == []
    LfpcOptions.from_kwargs(cfg["worker"]["reward"]["reward_function_kwargs"])  # the reward accepts its kwargs
    assert (REPO_ROOT / cfg["worker"]["reward"]["reward_function"].split(":")[0]).is_file()


@pytest.mark.parametrize("recipe", LFPC_RECIPES, ids=lambda p: p.stem)
@pytest.mark.parametrize("nnodes", [1, 2, 4])
def test_recipe_passes_easyr1_startup_rules(recipe, nnodes):
    # multi-node runs reuse the recipe unchanged: the batch rules must hold for 8, 16 and 32 GPUs
    _, cfg, _, _ = easyr1_and_lfpc(recipe, overrides=[f"trainer.nnodes={nnodes}"])
    assert startup_errors(cfg) == []


@pytest.mark.parametrize("recipe", LFPC_RECIPES, ids=lambda p: p.stem)
def test_recipe_opens_with_the_launch_command(recipe):
    # both stages are launched by the one LFPC launcher
    header = recipe.read_text().split("\n\n", 1)[0]
    assert "bash examples/lfpc_qwen2_5_vl_7b.sh" in header
    assert (REPO_ROOT / "examples/lfpc_qwen2_5_vl_7b.sh").is_file()


@pytest.mark.parametrize("recipe", LFPC_RECIPES, ids=lambda p: p.stem)
def test_table_12_values(recipe):
    # every Table 12 value, where EasyR1 or our section keeps it
    _, cfg, lfpc, _ = easyr1_and_lfpc(recipe)
    actor, rollout, trainer = cfg["worker"]["actor"], cfg["worker"]["rollout"], cfg["trainer"]
    assert cfg["data"]["rollout_batch_size"] == 256 and rollout["n"] == 16
    assert actor["global_batch_size"] == 32  # prompts: EasyR1 multiplies by rollout.n, as veRL's mini-batch
    assert actor["micro_batch_size_per_device_for_update"] == 2
    assert actor["micro_batch_size_per_device_for_experience"] == 4
    assert (lfpc.max_turns, lfpc.max_tokens_per_turn) == (5, 2048)
    assert cfg["algorithm"]["disable_kl"] is True and cfg["algorithm"]["kl_coef"] == 0
    assert (trainer["nnodes"], trainer["n_gpus_per_node"], trainer["max_steps"]) == (1, 8, 80)
    kwargs = cfg["worker"]["reward"]["reward_function_kwargs"]
    assert (kwargs["acc_weight"], kwargs["format_weight"], kwargs["tool_weight"]) == (0.8, 0.2, 1.2)
    assert kwargs["coverage_tau"] == 0.9
    stage2 = is_stage2(cfg["worker"]["reward"]["reward_function"])
    assert stage2 == ("stage2" in recipe.name)
    assert actor["optim"]["lr"] == (5e-7 if stage2 else 1e-6)
    # the comment beside each value names its source
    text = recipe.read_text()
    for key in ("rollout_batch_size: 256", "global_batch_size: 32", "max_steps: 80", "lr: ", "max_turns: 5"):
        line = next(line for line in text.splitlines() if line.strip().startswith(key))
        assert "# Table 12" in line, line


@pytest.mark.parametrize("recipe", LFPC_RECIPES, ids=lambda p: p.stem)
def test_pixel_policy_and_budgets(recipe):
    # views and crops are never upscaled, crops are capped at 2,048 tokens (select-resolution's default cap), and
    # the whole trajectory fits: 5 turns x 2,048 model tokens + 4 tool turns x (a capped crop + its text)
    _, cfg, lfpc, _ = easyr1_and_lfpc(recipe)
    data, rollout = cfg["data"], cfg["worker"]["rollout"]
    assert data["min_pixels"] == 28 * 28 and data["max_pixels"] == 2048 * 28 * 28 == 1605632
    crop = crop_tokens("qwen2_5_vl", data["max_pixels"], QWEN2_5_VL_PROCESSOR_MAX_PIXELS)
    trajectory = lfpc.max_turns * lfpc.max_tokens_per_turn + (lfpc.max_turns - 1) * (crop + TOOL_TURN_TEXT)
    assert trajectory == 18712 <= data["max_response_length"]
    assert rollout["limit_images"] >= 1 + (lfpc.max_turns - 1)  # the view + a crop per tool turn
    # the prompt holds a view of up to the cap and the system prompt, question and markers
    assert data["max_prompt_length"] >= crop + 512


@pytest.mark.parametrize("recipe", LFPC_RECIPES, ids=lambda p: p.stem)
def test_reward_pixel_limits_follow_data_overrides(recipe):
    # a CLI override of the data limits moves the reward's frame with it (interpolation, not a copy)
    _, cfg, _, _ = easyr1_and_lfpc(recipe, overrides=["data.min_pixels=784", "data.max_pixels=200704"])
    kwargs = cfg["worker"]["reward"]["reward_function_kwargs"]
    assert (kwargs["min_pixels"], kwargs["max_pixels"]) == (784, 200704)


@pytest.mark.parametrize("ablation", LFPC_ABLATIONS, ids=lambda p: p.stem)
@pytest.mark.parametrize("recipe", LFPC_RECIPES, ids=lambda p: p.stem)
def test_overlays_stay_valid_on_both_stages(recipe, ablation):
    # an overlay composes with either stage's recipe into a config that passes every rule, and says only what the
    # LFPC launcher reads from `locus:`
    raw, cfg, lfpc, launch = easyr1_and_lfpc(recipe, [ablation])
    assert schema_errors(raw, SCHEMA) == [] and startup_errors(cfg) == []
    assert lfpc_errors(lfpc, cfg, REPO_ROOT) == [] and reward_errors(raw, cfg) == []
    LfpcOptions.from_kwargs(cfg["worker"]["reward"]["reward_function_kwargs"])
    assert set(launch) <= set(LFPC_LAUNCH_KEYS)
    header = ablation.read_text().split("\n\n", 1)[0]
    assert f"LFPC_ABLATION=config/ablations/{ablation.name} bash examples/lfpc_qwen2_5_vl_7b.sh" in header


@pytest.mark.parametrize(
    "name, table, expected",
    [
        ("lfpc_mix_data", "Table 8", ({"mix_data": True}, "compute_score_stage2", {})),
        ("lfpc_hard_selection", "Table 9", ({"selection": "hard"}, None, {})),
        ("lfpc_random_selection", "Table 9", ({"selection": "random"}, None, {})),
        ("lfpc_ungated_iou", "Table 10", ({"stage": 2}, None, {"iou_gate": False})),
        ("lfpc_no_iou", "Table 10", ({"stage": 2}, None, {"iou_weight": 0.0})),
    ],
)
def test_each_overlay_changes_what_its_table_ablates(name, table, expected):
    # one overlay per row of Tables 8-10, changing exactly its setting (on Stage I's recipe for the one-stage mix,
    # Stage II's for the reward ablations)
    launch, reward, kwargs = expected
    recipe = LFPC_RECIPES[0] if "mix" in name else LFPC_RECIPES[1]
    path = REPO_ROOT / f"config/ablations/{name}.yaml"
    assert table in path.read_text()
    _, cfg, _, got = easyr1_and_lfpc(recipe, [path])
    _, base, _, _ = easyr1_and_lfpc(recipe)
    assert got == launch
    assert cfg["worker"]["reward"]["reward_function"].endswith(reward or base["worker"]["reward"]["reward_function"])
    changed = {
        key: value
        for key, value in cfg["worker"]["reward"]["reward_function_kwargs"].items()
        if base["worker"]["reward"]["reward_function_kwargs"].get(key) != value
    }
    assert changed == kwargs


@pytest.mark.parametrize(
    "recipe, ablation, message",
    [
        ("locus_qwen2_5_vl_7b.yaml", "lfpc_hard_selection.yaml", "are for LFPC overlays (LFPC_ABLATION)"),
        ("lfpc_stage1_qwen2_5_vl_7b.yaml", None, "is an LFPC recipe (`lfpc:` section): launch it with"),
    ],
)
def test_locus_preflight_refuses_lfpc_recipes_and_overlays(recipe, ablation, message):
    # the LOCUS launchers would silently ignore `locus.selection` or hand EasyR1 an `lfpc:` section it rejects
    from locus_train.preflight import make_plan, parse_args
    from locus_train.recipe import RecipeError

    argv = ["--recipe", str(REPO_ROOT / "config" / recipe), "--dry-run"]
    argv += ["--ablation", str(REPO_ROOT / "config/ablations" / ablation)] if ablation else []
    with pytest.raises(RecipeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make_plan(parse_args(argv))
