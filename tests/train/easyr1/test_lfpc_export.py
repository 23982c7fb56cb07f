"""EasyR1's own RLHFDataset over a `locus-data export-lfpc` export: the view reaches the prompt, the original's
path reaches multi_modal_data (where the multi-turn rollout reads it), the LFPC ground truth reaches the reward."""

import json

import pytest
from PIL import Image

from locus_agent.processor import load_processor
from locus_data.lfpc_export import export_lfpc
from locus_data.vqa import MANIFEST_NAME
from tests.testing_utils import require_easyr1


pytestmark = require_easyr1


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    """Three 1200x800 originals, two with a 300x200 view_image; exported with one val question."""
    root = tmp_path_factory.mktemp("lfpc_export")
    (root / "images").mkdir()
    lines = []
    for k in range(3):
        original = Image.new("RGB", (1200, 800), (60 * k, 100, 150))
        original.save(root / "images" / f"i{k}.png")
        line = {"id": f"q{k}", "image": f"images/i{k}.png", "question": "What colour?", "choices": ["a", "b"],
                "answer": "A", "boxes": [[100, 100, 140, 130]]}  # fmt: skip
        if k < 2:
            original.resize((300, 200)).save(root / "images" / f"v{k}.png")
            line["view_image"] = f"images/v{k}.png"
        lines.append(line)
    (root / MANIFEST_NAME).write_text("".join(json.dumps(line) + "\n" for line in lines))
    export_lfpc(root, root / "export", val=1, progress=False)
    return root


def test_rlhf_dataset_shows_the_view_and_keeps_the_original_path(export, tiny_qwen2_5_vl):
    # EasyR1 opens the struct's bytes (the view) and passes the struct on: the path survives to the rollout
    from verl.utils.dataset import RLHFDataset, process_image

    processor = load_processor(tiny_qwen2_5_vl)
    dataset = RLHFDataset(
        data_path=str(export / "export" / "train.parquet"),
        tokenizer=processor.tokenizer,
        processor=processor,
        prompt_key="problem",
        answer_key="answer",
        image_key="images",
        max_prompt_length=2048,
        min_pixels=784,  # the LFPC recipes' floor: never upscale a selected view
        max_pixels=1_605_632,
        filter_overlong_prompts=False,
    )
    assert len(dataset) == 2
    for index in range(len(dataset)):
        example = dataset[index]
        (entry,) = example["multi_modal_data"]["images"]
        gt = json.loads(example["ground_truth"])
        assert Image.open(entry["path"]).size == (gt["width"], gt["height"]) == (1200, 800)
        assert entry["path"] == str((export / "images" / f"i{example['id'][1]}.png").resolve())
        view = process_image(entry, 784, 1_605_632)  # what vLLM and the actor are given
        assert view.size == (gt["view_width"], gt["view_height"])
        assert view.size == ((300, 200) if example["view"] == "selected" else (1200, 800))
        prompt = processor.tokenizer.decode(example["raw_prompt_ids"])
        assert prompt.count("<|vision_start|>") == 1 and "What colour?\nA. a\nB. b\n" in prompt
