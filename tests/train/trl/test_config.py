"""The TRL recipes: every shipped YAML loads and passes the checks that need no weights; bad keys fail at once."""

import pytest

from locus_data.errors import UserError
from locus_train.trl.config import grpo_field_names, load_config
from locus_train.trl.train import grpo_config

from .conftest import REPO_ROOT, TRL_RECIPES


def test_every_recipe_is_shipped():
    # the three recipes plus the CPU demo; a renamed file would silently drop out of the loop below
    names = {path.name for path in TRL_RECIPES}
    assert {
        "locus_qwen2_5_vl_3b_lora.yaml",
        "locus_qwen2_5_vl_7b.yaml",
        "locus_qwen3_vl_4b_thinking.yaml",
        "locus_tiny_cpu_demo.yaml",
    } <= names


@pytest.mark.parametrize("recipe", TRL_RECIPES, ids=lambda p: p.name)
def test_recipe_loads_and_builds_a_grpo_config(recipe):
    # each YAML is valid for the installed trl: keys, values and batch arithmetic (GRPOConfig's own checks too)
    cfg = load_config(recipe, ["grpo.use_cpu=true", "grpo.bf16=false", "grpo.fsdp=", "grpo.fsdp_config=null"])
    args = grpo_config(cfg)
    assert args.generation_batch_size % args.num_generations == 0
    text = recipe.read_text(encoding="utf-8")
    # torchtune style: the file opens with the command that launches it and states its memory arithmetic
    assert text.splitlines()[0].startswith("# LOCUS on TRL")
    assert "locus-train trl --config config/trl/" in text or "accelerate launch -m locus_train.trl" in text
    assert "Memory" in text
    # the format prompt a recipe names resolves against the project root, as in the EasyR1 recipes
    assert cfg.data.format_prompt and (REPO_ROOT / "locus_train" / "prompts").as_posix() in cfg.data.format_prompt


def test_thinking_recipe_opens_think_and_writes_relative_boxes():
    # Qwen3-VL-Thinking: the template pre-opens <think>, and boxes are 0-1000 of the image
    cfg = load_config(REPO_ROOT / "config" / "trl" / "locus_qwen3_vl_4b_thinking.yaml")
    assert cfg.reward.think_prefilled and cfg.reward.coord_frame == "qwen3_vl"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("grpo.max_step=3", "did you mean 'grpo.max_steps'"),  # a TRL field name typo
        ("model.pth=/x", "did you mean 'model.path'"),  # a LOCUS field name typo
        ("reward.format_wieght=0.2", "did you mean 'reward.format_weight'"),
        ("reward.variant=io", "unknown variant 'io'"),  # compute_score's own option check
        ("data.num_images=3", "data.num_images must be 1"),
        ("reward.coord_frame=qwen2.5", "unknown coord_frame"),
        ("max_steps", "expected key=value"),
    ],
)
def test_bad_keys_fail_with_a_hint(override, message):
    with pytest.raises(UserError, match=message):
        load_config(REPO_ROOT / "config" / "trl" / "locus_tiny_cpu_demo.yaml", [override])


def test_overrides_win_and_paths_resolve(tmp_path, monkeypatch):
    # YAML paths start at the project root; paths given on the command line start at the working directory
    monkeypatch.chdir(tmp_path)
    cfg = load_config(REPO_ROOT / "config" / "trl" / "locus_tiny_cpu_demo.yaml", ["data.dir=mine", "grpo.max_steps=3"])
    assert cfg.data.dir == str(tmp_path / "mine")
    assert cfg.model.path == str(REPO_ROOT / "demo" / "tiny_qwen2_5_vl")
    assert cfg.grpo["max_steps"] == 3
    # a hub id stays a hub id
    assert load_config(None, ["model.path=Qwen/Qwen2.5-VL-3B-Instruct"]).model.path == "Qwen/Qwen2.5-VL-3B-Instruct"


def test_grpo_fields_are_trls():
    # the pass-through section is checked against the installed trl, not a copied list
    fields = grpo_field_names()
    assert {"num_generations", "max_completion_length", "beta", "use_vllm", "output_dir"} <= set(fields)
