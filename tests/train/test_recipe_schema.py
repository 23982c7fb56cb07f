"""Every shipped recipe and ablation is a valid EasyR1 (b44b311) config and passes its startup rules."""

import pytest
from omegaconf import OmegaConf

from locus_train.easyr1_config import (
    PINNED_COMMIT,
    compose,
    load_schema,
    locus_errors,
    resolve,
    schema_errors,
    startup_errors,
)

from .conftest import ABLATIONS, RECIPES, REPO_ROOT


SCHEMA = load_schema()
CUE_RECIPES = [path for path in RECIPES if "text_cue" not in path.name]


def images_per_prompt(recipe) -> int:
    return 1 if "text_cue" in recipe.name else 2


def test_schema_fixture_is_from_the_pinned_commit():
    assert SCHEMA["easyr1_commit"] == PINNED_COMMIT
    assert SCHEMA["root"] == "PPOConfig"
    # spot checks against the pinned source: the traps the issue names
    assert SCHEMA["dataclasses"]["DataConfig"]["fields"]["min_pixels"]["default"] == 262144
    assert SCHEMA["dataclasses"]["RolloutConfig"]["fields"]["limit_images"]["default"] == 0
    assert "reward_type" not in SCHEMA["dataclasses"]["RewardConfig"]["fields"]  # removed upstream in #558


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_recipe_keys_types_and_choices_match_easyr1(recipe):
    raw, locus = compose(recipe)
    assert schema_errors(raw, SCHEMA) == []
    assert locus == {}


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_recipe_opens_with_its_launch_command(recipe):
    header = recipe.read_text().split("\n\n", 1)[0]
    assert f"bash examples/{recipe.stem}.sh" in header
    assert (REPO_ROOT / "examples" / f"{recipe.stem}.sh").is_file()


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
@pytest.mark.parametrize("nnodes, gpus", [(1, 8), (2, 8), (4, 8)])
def test_recipe_passes_easyr1_startup_rules(recipe, nnodes, gpus):
    # multi-node runs reuse the recipe unchanged: the batch rules must hold for 8, 16 and 32 GPUs
    raw, _ = compose(recipe, overrides=[f"trainer.nnodes={nnodes}", f"trainer.n_gpus_per_node={gpus}"])
    assert startup_errors(resolve(raw, SCHEMA)) == []


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_recipe_meets_locus_rules(recipe):
    raw, _ = compose(recipe)
    cfg = resolve(raw, SCHEMA)
    assert locus_errors(raw, cfg, images_per_prompt(recipe)) == []
    for key in ("format_prompt",):
        assert (REPO_ROOT / cfg["data"][key]).is_file()
    assert (REPO_ROOT / cfg["worker"]["reward"]["reward_function"].split(":")[0]).is_file()
    # the paper's GRPO settings
    assert cfg["worker"]["rollout"]["n"] == 8 and cfg["worker"]["actor"]["global_batch_size"] == 128
    assert cfg["worker"]["actor"]["optim"]["lr_warmup_ratio"] == 0.05 and cfg["worker"]["actor"]["max_grad_norm"] == 1
    assert cfg["worker"]["reward"]["reward_function_kwargs"]["format_weight"] == 0.1
    # EasyR1's default min_pixels (512x512) would upsample every cue: the recipes choose their own
    assert cfg["data"]["min_pixels"] < 262144


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_reward_pixel_limits_follow_data_overrides(recipe):
    # a CLI override of the data limits must move the reward's frame with it (interpolation, not a copy)
    raw, _ = compose(recipe, overrides=["data.min_pixels=4096", "data.max_pixels=200704"])
    kwargs = resolve(raw, SCHEMA)["worker"]["reward"]["reward_function_kwargs"]
    assert (kwargs["min_pixels"], kwargs["max_pixels"]) == (4096, 200704)


def test_backbone_specific_reward_settings():
    kwargs = {p.stem: resolve(compose(p)[0], SCHEMA)["worker"]["reward"]["reward_function_kwargs"] for p in RECIPES}
    assert kwargs["locus_qwen3_vl_4b"]["coord_frame"] == "qwen3_vl"
    assert kwargs["locus_qwen3_vl_4b"]["think_prefilled"] is True  # its chat template pre-opens <think>
    assert kwargs["locus_mimo_vl_7b"]["coord_frame"] == "qwen2_5_vl"  # MiMo-VL writes Qwen2.5-VL pixels
    assert kwargs["locus_qwen2_5_vl_7b"]["think_prefilled"] is False


@pytest.mark.parametrize("ablation", ABLATIONS, ids=lambda p: p.stem)
@pytest.mark.parametrize("recipe", CUE_RECIPES, ids=lambda p: p.stem)
def test_ablation_overlays_stay_valid(recipe, ablation):
    raw, locus = compose(recipe, [ablation])
    assert schema_errors(raw, SCHEMA) == []
    cfg = resolve(raw, SCHEMA)
    assert startup_errors(cfg) == [] and locus_errors(raw, cfg) == []
    if "data_config" in locus:
        # a data ablation names a data config of the data engineer's and its own dataset folder
        assert (REPO_ROOT / locus["data_config"]).is_file()
        assert locus["data_dir"] != "data/locus_cue"


def test_reward_ablations_set_their_variant():
    for name, variant in (("giou", "giou"), ("lfpc", "lfpc")):
        raw, _ = compose(RECIPES[0], [REPO_ROOT / f"config/ablations/{name}.yaml"])
        assert resolve(raw, SCHEMA)["worker"]["reward"]["reward_function_kwargs"]["variant"] == variant


@pytest.mark.parametrize(
    "overrides, message",
    [
        # a key EasyR1 removed upstream (#558): strict schema, the run would die at startup
        (["worker.reward.reward_type=batch"], "`worker.reward.reward_type` is not an EasyR1 config key"),
        # a typo gets a suggestion
        (["data.max_prompt_lenght=2048"], "did you mean `data.max_prompt_length`"),
        # auto keys are written by EasyR1's post_init; setting them is a mistake
        (["worker.rollout.prompt_length=10"], "filled in by EasyR1 itself"),
        # OmegaConf would quietly turn "8" into 8; we insist on the declared type
        (["worker.rollout.n='8'"], "`worker.rollout.n`: expected int"),
        # a bool where an int belongs
        (["data.rollout_batch_size=true"], "expected int"),
        # an unknown KL estimator only fails inside the first training step
        (["algorithm.kl_penalty=l2"], "EasyR1 accepts"),
        (["worker.actor.loss_avg_mode=sample"], "EasyR1 accepts"),
        (["algorithm.adv_estimator=ppo"], "EasyR1 accepts"),
    ],
)
def test_schema_errors_name_the_key(overrides, message):
    raw, _ = compose(RECIPES[0], overrides=overrides)
    errors = schema_errors(raw, SCHEMA)
    assert any(message in error for error in errors), errors


@pytest.mark.parametrize(
    "overrides, message",
    [
        # 100 prompts per rollout cannot be cut into updates of 128
        (["data.rollout_batch_size=100"], "must be divisible by worker.actor.global_batch_size"),
        # GRPO's advantage is relative to the group: one sample has none
        (["worker.rollout.n=1"], "needs worker.rollout.n > 1"),
        # 128 x 8 / 8 GPUs = 128 per device, not divisible by 3
        (["worker.actor.micro_batch_size_per_device_for_update=3"], "micro_batch_size_per_device_for_update"),
        # 128 x 8 = 1024 responses, not divisible by 3
        (["worker.actor.micro_batch_size_per_device_for_experience=3"], "micro_batch_size_per_device_for_experience"),
        # TP 2 cannot split 7 GPUs
        (["trainer.n_gpus_per_node=7"], "tensor_parallel_size 2 must divide the world size 7"),
        # vLLM's scheduler must fit one whole sequence
        (["worker.rollout.max_num_batched_tokens=2048"], "max_num_batched_tokens 2048 must be >="),
        # 16 prompts x 8 = 128 responses over 256 GPUs: zero per device
        (["data.rollout_batch_size=16", "worker.actor.global_batch_size=16", "trainer.nnodes=32"], "smaller than"),
    ],
)
def test_startup_rule_violations_are_caught(overrides, message):
    raw, _ = compose(RECIPES[0], overrides=overrides)
    errors = startup_errors(resolve(raw, SCHEMA))
    assert any(message in error for error in errors), errors


@pytest.mark.parametrize(
    "overrides, message",
    [
        # limit_images 0 leaves vLLM's per-prompt image limit at its default
        (["worker.rollout.limit_images=0"], "limit_images"),
        # an all-zero-IoU group has mean overall 0.1 and would survive a filter on `overall`
        (["algorithm.online_filtering=true", "algorithm.filter_key=overall"], "filter on `iou`"),
        # a literal copy of the pixel limit can drift from data.min_pixels
        (["worker.reward.reward_function_kwargs.min_pixels=1024"], "must be the interpolation"),
        # sampled validation is not the paper's greedy evaluation
        (["worker.rollout.val_override_config.top_k=-1"], "not greedy"),
    ],
)
def test_locus_rule_violations_are_caught(overrides, message):
    raw, _ = compose(RECIPES[0], overrides=overrides)
    errors = locus_errors(raw, resolve(raw, SCHEMA))
    assert any(message in error for error in errors), errors


def test_omegaconf_is_below_2_4():
    # EasyR1 b44b311 cannot build its PPOConfig under omegaconf 2.4.0 (TupleConfig length error on trainer.logger)
    import omegaconf

    assert tuple(int(p) for p in omegaconf.__version__.split(".")[:2]) < (2, 4)


def test_composed_ablation_keeps_interpolations_for_easyr1(tmp_path):
    # the merged file EasyR1 loads must still say ${data.min_pixels}: EasyR1 resolves it after CLI overrides
    raw, _ = compose(RECIPES[0], [REPO_ROOT / "config/ablations/giou.yaml"])
    OmegaConf.save(raw, tmp_path / "c.yaml")
    assert "${data.min_pixels}" in (tmp_path / "c.yaml").read_text()
