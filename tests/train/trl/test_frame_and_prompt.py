"""Under TRL the reward scores in the frame the real processor shows the model, and the prompt is EasyR1's text."""

import json

import pytest
from PIL import Image

from locus_agent.processor import load_processor, pixel_limits, set_pixel_limits
from locus_data.problems import CUE_SEARCH_PROBLEM
from locus_reward.frames import seen_size, to_model
from locus_reward.parsing import format_answer
from locus_train.prompting import build_messages, load_format_prompt, render_prompt
from locus_train.recipe import DEFAULT_FORMAT_PROMPTS
from locus_train.trl.data import load_split
from locus_train.trl.rewards import cue_search_reward

from ..conftest import write_tiny_dataset


# COCO shapes, a portrait, a tiny cue-sized image, and sizes below / above the tiny processors' pixel limits
SIZES = [(640, 480), (500, 375), (427, 640), (612, 612), (40, 32), (30, 300), (1000, 90)]


@pytest.mark.parametrize("limits", [{}, {"min_pixels": 128 * 128, "max_pixels": 256 * 256}], ids=["own", "set"])
def test_reward_frame_is_the_processor_frame(tiny_checkpoint, limits):
    kind, path = tiny_checkpoint
    processor = load_processor(path)
    # what check_run does with data.min_pixels / data.max_pixels (null keeps the processor's own)
    low, high = set_pixel_limits(processor, limits.get("min_pixels"), limits.get("max_pixels"))
    assert (low, high) == pixel_limits(processor)
    if limits:
        assert (low, high) == (limits["min_pixels"], limits["max_pixels"])
    patch = processor.image_processor.patch_size
    for width, height in SIZES:
        # through the whole processor, as TRL calls it
        text = processor.apply_chat_template(build_messages("<image>x"), add_generation_prompt=True)
        grid = processor(text=[text], images=[Image.new("RGB", (width, height))], return_tensors="pt")
        _, rows, cols = grid["image_grid_thw"][0].tolist()
        # the frame rule (one home: locus_reward.frames) with EasyR1's pre-resize off equals what the model sees
        assert seen_size(width, height, kind, None, None, low, high) == (cols * patch, rows * patch)
        gt_box = (width * 0.25, height * 0.5, width * 0.75, height * 0.9)
        gt = json.dumps({"box": list(gt_box), "width": width, "height": height})
        seen = to_model(
            gt_box,
            width,
            height,
            kind,
            min_pixels=None,
            max_pixels=None,
            processor_min_pixels=low,
            processor_max_pixels=high,
        )
        right = f"<think>.</think><answer>{format_answer(seen, decimals=3)}</answer>"
        stored = f"<think>.</think><answer>{format_answer(gt_box, decimals=3)}</answer>"
        logged = {}
        scores = cue_search_reward(
            [right, stored],
            [gt, gt],
            coord_frame=kind,
            processor_min_pixels=low,
            processor_max_pixels=high,
            log_metric=logged.__setitem__,
        )
        # a box written in the seen frame is exact; the same box in stored pixels is in the wrong frame
        assert scores[0] == pytest.approx(1.0, abs=1e-6)
        assert scores[1] < scores[0] - 1e-3, (width, height)
        assert logged["cue_search/parse_fail"] == 0.0 and logged["cue_search/format"] == 1.0


def test_rendered_chat_is_the_same_under_both_trainers(tiny_qwen2_5_vl, tmp_path):
    from trl.data_utils import prepare_multimodal_messages

    processor = load_processor(tiny_qwen2_5_vl)
    prompt_file = DEFAULT_FORMAT_PROMPTS["qwen2_5_vl"]
    data = write_tiny_dataset(tmp_path / "data", CUE_SEARCH_PROBLEM, [(640, 480), (40, 32)], rows=1)
    row = load_split(data / "train.parquet", load_format_prompt(prompt_file), cache_dir=str(tmp_path / "cache"))[0]
    # TRL's path: the dataset row, with images filled into the placeholders the way GRPOTrainer does it
    trl_messages = prepare_multimodal_messages(row["prompt"], images=row["images"])
    trl_text = processor.apply_chat_template(trl_messages, add_generation_prompt=True, tokenize=False)
    # EasyR1's path (RLHFDataset._build_messages at b44b311): render the jinja, split on <image>, one user turn
    easyr1_messages = build_messages(render_prompt(CUE_SEARCH_PROBLEM, load_format_prompt(prompt_file)))
    easyr1_text = processor.apply_chat_template(easyr1_messages, add_generation_prompt=True, tokenize=False)
    assert trl_text == easyr1_text
    assert "absolute pixel coordinates of the first image" in trl_text  # the format prompt really is in it
    # images in marker order: the full image fills the first placeholder, the cue the second
    filled = [part["image"].size for part in trl_messages[0]["content"] if part["type"] == "image"]
    assert filled == [(640, 480), (40, 32)]
    assert row["answer"] == json.dumps({"box": [10.0, 12.0, 42.0, 44.0], "width": 640, "height": 480})
