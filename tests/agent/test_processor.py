"""The processor loader works on a CPU machine without torchvision, on checkpoints laid out like released ones."""

import json

import pytest
from PIL import Image

from locus_agent.processor import load_processor, processor_class_name
from locus_data.problems import CUE_SEARCH_PROBLEM
from locus_train.prompting import build_messages


def test_load_processor_falls_back_to_image_only(tiny_checkpoint):
    kind, path = tiny_checkpoint
    processor = load_processor(path)
    # the stock name stays a prefix: EasyR1 picks the mrope function by a substring of the class name
    expected = {"qwen2_5_vl": "Qwen2_5_VLProcessor", "qwen3_vl": "Qwen3VLProcessor"}[kind]
    assert type(processor).__name__.startswith(expected)
    assert processor_class_name(path) == expected
    prompt = processor.apply_chat_template(build_messages(CUE_SEARCH_PROBLEM), add_generation_prompt=True)
    images = [Image.new("RGB", (448, 336), "gray"), Image.new("RGB", (64, 64), "white")]
    inputs = processor(text=[prompt], images=images, return_tensors="pt")
    grid = inputs["image_grid_thw"].tolist()
    # two images, in prompt order, each with its own grid
    assert len(grid) == 2 and grid[0][1] * grid[0][2] > grid[1][1] * grid[1][2]
    merged_tokens = sum(t * h * w for t, h, w in grid) // 4
    assert int((inputs["input_ids"] == processor.image_token_id).sum()) == merged_tokens


def test_load_processor_rejects_text_only_checkpoint(tmp_path):
    # a checkpoint without a Qwen-VL processor would make EasyR1 treat the model as text-only: refuse loudly
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"processor_class": "LlamaProcessor"}))
    with pytest.raises(ValueError, match="needs a Qwen-VL processor"):
        load_processor(tmp_path)


def test_load_processor_missing_directory(tmp_path):
    # a typo in the model path must name the path, not fail deep inside transformers
    with pytest.raises(FileNotFoundError, match="checkpoint directory not found"):
        load_processor(tmp_path / "nope")
