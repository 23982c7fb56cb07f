"""Each recipe's prompt, built exactly as EasyR1 builds it, holds both images and fits its token budget."""

import argparse

import pytest

from locus_agent.processor import load_processor
from locus_data.problems import CUE_SEARCH_PROBLEM, IMAGE_MARKER
from locus_train.easyr1_config import compose, load_schema, resolve
from locus_train.prompt_lengths import add_arguments, iter_rows, prompt_length, run
from locus_train.prompting import build_messages, load_format_prompt, render_prompt

from .conftest import RECIPES, REPO_ROOT, write_tiny_dataset


SCHEMA = load_schema()
# recipe -> tiny processor family it shares a processor and chat-template style with
BACKBONE = {
    "locus_qwen2_5_vl_7b": "qwen2_5_vl",
    "locus_mimo_vl_7b": "qwen2_5_vl",
    "locus_text_cue_qwen2_5_vl_7b": "qwen2_5_vl",
    "locus_qwen3_vl_4b": "qwen3_vl_thinking",
}


def recipe_data(stem: str) -> dict:
    return resolve(compose(REPO_ROOT / "config" / f"{stem}.yaml")[0], SCHEMA)["data"]


def test_every_recipe_has_a_backbone_here():
    assert sorted(BACKBONE) == sorted(p.stem for p in RECIPES)


@pytest.mark.parametrize("stem", sorted(BACKBONE))
def test_format_prompt_keeps_the_image_markers_in_one_user_turn(stem):
    data = recipe_data(stem)
    images = 1 if "text_cue" in stem else 2
    problem = CUE_SEARCH_PROBLEM if images == 2 else "<image>\nFind the region: the red mug left of the laptop."
    messages = build_messages(render_prompt(problem, load_format_prompt(REPO_ROOT / data["format_prompt"])))
    assert len(messages) == 1 and messages[0]["role"] == "user"
    assert [part["type"] for part in messages[0]["content"]].count("image") == images
    text = "".join(part.get("text", "") for part in messages[0]["content"])
    assert IMAGE_MARKER not in text and "<answer>" in text and "[x1, y1, x2, y2]" in text


@pytest.mark.parametrize("stem", sorted(BACKBONE))
def test_prompt_tokens_hold_both_images_within_budget(stem, tmp_path, tiny_qwen2_5_vl, tiny_qwen3_vl_thinking):
    data = recipe_data(stem)
    checkpoint = tiny_qwen3_vl_thinking if BACKBONE[stem] == "qwen3_vl_thinking" else tiny_qwen2_5_vl
    processor = load_processor(checkpoint)
    fmt = load_format_prompt(REPO_ROOT / data["format_prompt"])
    sizes = [(640, 480)] if "text_cue" in stem else [(640, 480), (40, 32)]
    problem = CUE_SEARCH_PROBLEM if len(sizes) == 2 else "<image>\nFind the region: the red mug."
    dataset = write_tiny_dataset(tmp_path / "data", problem, sizes, rows=1)
    row = next(iter_rows(dataset / "val.parquet"))

    length = prompt_length(processor, row["problem"], row["images"], fmt, data["min_pixels"], data["max_pixels"])
    assert length <= data["max_prompt_length"]

    # the same prompt through the processor: one image-token run per image, sized by its grid
    from locus_train.images import process_image

    messages = build_messages(render_prompt(row["problem"], fmt))
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    pixels = [process_image(image, data["min_pixels"], data["max_pixels"]) for image in row["images"]]
    inputs = processor(pixels, [prompt], add_special_tokens=False, return_tensors="np")
    grid = inputs["image_grid_thw"].tolist()
    assert len(grid) == len(sizes)
    ids = inputs["input_ids"][0].tolist()
    assert ids.count(processor.image_token_id) == sum(t * h * w for t, h, w in grid) // 4
    assert ids.count(processor.tokenizer.convert_tokens_to_ids("<|vision_start|>")) == len(sizes)
    assert len(ids) == length
    # min_pixels below the cue's size: EasyR1 leaves the 40x32 cue alone (its default would make it 512x410)
    if len(sizes) == 2:
        assert pixels[1].size == (40, 32)
    if BACKBONE[stem] == "qwen3_vl_thinking":
        # the template pre-opens the think block, which is why the recipe sets think_prefilled
        assert prompt.endswith("<think>\n")


def test_measure_prompts_cli_contract(tmp_path, tiny_qwen2_5_vl):
    # run() is what `locus-data measure-prompts` calls: arguments as the preflight passes them
    data = recipe_data("locus_qwen2_5_vl_7b")
    dataset = write_tiny_dataset(tmp_path / "data", CUE_SEARCH_PROBLEM, [(640, 480), (40, 32)], rows=2)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        [str(dataset), "--model", str(tiny_qwen2_5_vl), "--format-prompt", str(REPO_ROOT / data["format_prompt"])]
        + ["--min-pixels", str(data["min_pixels"]), "--max-pixels", str(data["max_pixels"])]
        + ["--max-prompt-length", str(data["max_prompt_length"]), "--quiet"]
    )
    assert run(args) == 0
