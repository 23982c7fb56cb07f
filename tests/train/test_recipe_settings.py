"""Tools that must match training read the recipe's frame, pixel limits and prompt from one place."""

from pathlib import Path

import pytest

from locus_eval.cli import apply_recipe, build_parser
from locus_train.recipe import DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS, read_recipe

from .conftest import REPO_ROOT


CUE_RECIPES = sorted((REPO_ROOT / "config").glob("locus_*.yaml"))


@pytest.mark.parametrize("recipe", CUE_RECIPES, ids=lambda p: p.stem)
def test_shipped_recipes_agree_with_the_tool_defaults(recipe):
    # tools run without --recipe fall back to these constants: a recipe that drifted would be evaluated off-frame
    settings = read_recipe(recipe)
    assert (settings.min_pixels, settings.max_pixels) == (DEFAULT_MIN_PIXELS, DEFAULT_MAX_PIXELS)
    assert Path(settings.format_prompt).is_file()


def test_qwen3_recipe_is_relative_and_prefilled():
    # the thinking template opens <think> itself and the model writes 0-1000 coordinates
    settings = read_recipe(REPO_ROOT / "config" / "locus_qwen3_vl_4b.yaml")
    assert settings.coord_frame == "qwen3_vl" and settings.think_prefilled


def test_eval_takes_frame_limits_and_prompt_from_recipe():
    args = build_parser().parse_args(
        ["cue-search", "--model", "m", "--out", "o", "--data", "d", "--recipe", "config/locus_qwen3_vl_4b.yaml"]
    )
    apply_recipe(args)
    assert args.coord_frame == "qwen3_vl"
    assert args.prompt.endswith("cue_search_qwen3_vl_thinking.jinja")
    assert (args.min_pixels, args.max_pixels) == (DEFAULT_MIN_PIXELS, DEFAULT_MAX_PIXELS)


def test_eval_explicit_flags_win_over_recipe():
    # an explicit flag is a deliberate choice (e.g. evaluating at higher resolution than training)
    args = build_parser().parse_args(
        [
            "cue-search",
            "--model",
            "m",
            "--out",
            "o",
            "--data",
            "d",
            "--recipe",
            "config/locus_qwen2_5_vl_7b.yaml",
            "--max-pixels",
            "none",
            "--coord-frame",
            "original",
        ]  # fmt: skip
    )
    apply_recipe(args)
    assert args.coord_frame == "original" and args.max_pixels is None and args.min_pixels == DEFAULT_MIN_PIXELS


def test_eval_without_frame_or_recipe_is_an_error():
    # scoring in a guessed frame is the silent failure LOCUS exists to avoid
    args = build_parser().parse_args(["cue-search", "--model", "m", "--out", "o", "--data", "d"])
    with pytest.raises(ValueError, match="--coord-frame or --recipe"):
        apply_recipe(args)
