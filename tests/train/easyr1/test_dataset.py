"""EasyR1's RLHFDataset over a real `locus-data build`, with each recipe's processor and format prompt."""

import json
from io import BytesIO

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from locus_agent.processor import load_processor
from locus_train.easyr1.step_setup import rlhf_dataset as step_dataset
from locus_train.prompt_lengths import measure_file
from locus_train.prompting import load_format_prompt
from tests.testing_utils import require_easyr1

from .conftest import BACKBONE, CUE_RECIPES, easyr1_config, launcher_overrides


pytestmark = require_easyr1


def rlhf_dataset(config, split: str, processor):
    """RLHFDataset with the arguments ``verl.trainer.data_loader.create_dataloader`` passes, the filter on."""
    return step_dataset(config.data, processor, split)


@pytest.fixture(scope="module", params=CUE_RECIPES, ids=lambda p: p.stem)
def recipe_setup(request, small_data, checkpoints):
    """(config, processor, {split: (dataset, its items)}): each split through EasyR1 once per recipe."""
    recipe = request.param
    model = checkpoints[BACKBONE[recipe.stem]]
    overrides = launcher_overrides(recipe, [], small_data, model) + ["data.filter_overlong_prompts=true"]
    config, processor = easyr1_config(recipe, overrides=overrides), load_processor(model)
    splits = {}
    for split in ("train", "val"):
        dataset = rlhf_dataset(config, split, processor)
        splits[split] = dataset, [dataset[i] for i in range(len(dataset))]
    return config, processor, splits


@pytest.mark.parametrize("split", ["train", "val"])
def test_no_row_dropped_and_offline_lengths_equal_easyr1(recipe_setup, split):
    # preflight trusts LOCUS's offline count instead of EasyR1's startup filter: they must agree on every row
    config, processor, splits = recipe_setup
    assert config.data.filter_overlong_prompts is True
    _, items = splits[split]
    path = config.data.train_files if split == "train" else config.data.val_files
    assert len(items) == pq.ParquetFile(path).metadata.num_rows  # the recipe's budget holds every built prompt
    easyr1_lengths = [int(item["attention_mask"].sum()) for item in items]
    fmt = load_format_prompt(config.data.format_prompt)
    offline = measure_file(path, processor, fmt, config.data.min_pixels, config.data.max_pixels, progress=False)
    assert offline == easyr1_lengths
    assert max(easyr1_lengths) <= config.data.max_prompt_length


def test_collate_repeat_chunk_keep_ground_truth_with_its_prompt(recipe_setup):
    # GRPO repeats each prompt n times and splits the batch across workers: answers must stay with their images
    from PIL import Image
    from verl.protocol import DataProto
    from verl.utils.dataset import collate_fn

    config, _, splits = recipe_setup
    _, items = splits["val"]
    table = pq.read_table(config.data.val_files).to_pylist()
    batch = DataProto.from_single_dict(collate_fn(items))
    batch.non_tensor_batch["uid"] = np.array([f"row{i}" for i in range(len(batch))], dtype=object)
    n = config.worker.rollout.n
    chunks = batch.repeat(repeat_times=n, interleave=True).chunk(chunks=4)
    assert [len(chunk) for chunk in chunks] == [len(table) * n // 4] * 4
    position = 0
    for chunk in chunks:
        for k in range(len(chunk)):
            index = position // n  # interleaved: the n copies of a prompt are adjacent
            row = table[index]
            assert chunk.non_tensor_batch["uid"][k] == f"row{index}"
            assert chunk.non_tensor_batch["ground_truth"][k] == row["answer"]
            assert chunk.non_tensor_batch["image_id"][k] == row["image_id"]  # metadata columns pass through
            images = chunk.non_tensor_batch["multi_modal_data"][k]["images"]
            assert [image["bytes"] for image in images] == [image["bytes"] for image in row["images"]]
            assert torch.equal(chunk.batch["input_ids"][k], items[index]["input_ids"])
            # the answer's frame is the stored full image the prompt carries
            answer = json.loads(row["answer"])
            assert Image.open(BytesIO(images[0]["bytes"])).size == (answer["width"], answer["height"])
            position += 1


def test_measure_prompts_counts_an_lfpc_runs_system_prompt(lfpc_data, checkpoints, tmp_path):
    # the LFPC launcher's preflight measures with --system-prompt (the agent's prompt, tool schema included): its
    # report must hold the lengths EasyR1's dataset gives the shipped Stage I recipe through our entry point's
    # system-prompted processor, and a measurement without it must be shorter (it would pass overlong prompts)
    from locus_data.yaml_config import read_yaml
    from locus_train.easyr1.config import system_prompt_file
    from locus_train.easyr1.main import build_config, system_prompted
    from locus_train.easyr1.step_setup import FORCED, path_overrides
    from locus_train.prompt_lengths import main as measure_prompts
    from locus_train.prompt_report import PromptLengthReport

    from ..conftest import REPO_ROOT

    recipe, model = REPO_ROOT / "config/lfpc_stage1_qwen2_5_vl_7b.yaml", checkpoints["qwen2_5_vl"]
    overrides = path_overrides(read_yaml(recipe), REPO_ROOT, lfpc_data, str(model)) + FORCED
    config = build_config([f"config={recipe}", *overrides], REPO_ROOT)
    processor = system_prompted(load_processor(model), config, REPO_ROOT)
    dataset = rlhf_dataset(config, "train", processor)
    easyr1_lengths = [int(dataset[i]["attention_mask"].sum()) for i in range(len(dataset))]
    system = system_prompt_file(config.worker.rollout.lfpc, "qwen2_5_vl", REPO_ROOT)
    data = config.data
    argv = [str(lfpc_data), "--model", str(model), "--min-pixels", str(data.min_pixels), "--max-pixels"]
    argv += [str(data.max_pixels), "--max-prompt-length", str(data.max_prompt_length), "--splits", "train", "--quiet"]
    argv += ["--format-prompt", "none"]  # LFPC recipes have none: the question carries its instruction
    assert measure_prompts([*argv, "--system-prompt", str(system), "--report", str(tmp_path / "with.json")]) == 0
    report = PromptLengthReport.read(tmp_path / "with.json")
    assert (report.splits["train"].min, report.splits["train"].max) == (min(easyr1_lengths), max(easyr1_lengths))
    assert report.system_prompt == str(system) and report.system_prompt_sha256 is not None
    assert measure_prompts([*argv, "--report", str(tmp_path / "without.json")]) == 0
    assert PromptLengthReport.read(tmp_path / "without.json").splits["train"].max < max(easyr1_lengths)
