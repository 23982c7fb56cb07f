"""EasyR1's AutoRewardManager loading locus_reward/cue_search.py by path, with each recipe's reward kwargs."""

import pyarrow.parquet as pq
import pytest
import torch

from locus_agent.processor import load_processor
from locus_reward.cue_search import SCORE_KEYS
from locus_reward.frames import to_model
from locus_reward.ground_truth import loads
from locus_reward.parsing import format_answer
from tests.testing_utils import require_easyr1

from .conftest import BACKBONE, CUE_RECIPES, easyr1_config, launcher_overrides


pytestmark = require_easyr1

RESPONSE_LENGTH = 96  # padded response width, as the rollout pads to data.max_response_length


def response_text(box, think_prefilled: bool) -> str:
    # a Qwen3-VL thinking template opens <think> in the prompt, so the response starts inside it
    opening = "" if think_prefilled else "<think>"
    return f"{opening}The cue is the patch near there.</think><answer>{format_answer(box, decimals=2)}</answer>"


def reward_batch(tokenizer, responses: list[str], ground_truths: list[str]):
    """What the reward manager reads of a rollout batch: responses (right-padded), response_mask, ground_truth."""
    import numpy as np
    from verl.protocol import DataProto

    ids = torch.full((len(responses), RESPONSE_LENGTH), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, text in enumerate(responses):
        tokens = tokenizer.encode(text, add_special_tokens=False) + [tokenizer.eos_token_id]
        assert len(tokens) <= RESPONSE_LENGTH
        ids[i, : len(tokens)], mask[i, : len(tokens)] = torch.tensor(tokens), 1
    return DataProto.from_dict(
        tensors={"responses": ids, "response_mask": mask},
        non_tensors={"ground_truth": np.array(ground_truths, dtype=object)},
    )


@pytest.mark.parametrize("recipe", CUE_RECIPES, ids=lambda p: p.stem)
def test_reward_manager_scores_locus_answers(recipe, small_data, checkpoints, tmp_path):
    # the reward a run gets is what EasyR1's own manager computes from the file and kwargs the launcher passes
    from verl.workers.reward import AutoRewardManager

    model = checkpoints[BACKBONE[recipe.stem]]
    config = easyr1_config(recipe, overrides=launcher_overrides(recipe, [], small_data, model))
    reward_config = config.worker.reward
    kwargs = reward_config.reward_function_kwargs
    tokenizer = load_processor(model).tokenizer
    manager = AutoRewardManager(reward_config, tokenizer)
    assert manager.reward_type == "batch"

    gt_text = pq.read_table(config.data.val_files, columns=["answer"]).column(0)[0].as_py()
    gt = loads(gt_text)
    limits = {"min_pixels": kwargs["min_pixels"], "max_pixels": kwargs["max_pixels"]}
    seen = to_model(gt.box, gt.width, gt.height, kwargs["coord_frame"], **limits)
    prefilled = kwargs["think_prefilled"]
    responses = [response_text(seen, prefilled), response_text(gt.box, prefilled), response_text(seen, prefilled)]
    batch = reward_batch(tokenizer, responses, [gt_text, gt_text, "{not json"])
    rewards, metrics = manager.compute_reward(batch)

    overall = metrics["overall"]
    assert overall[0] == pytest.approx(1.0, abs=1e-3)  # right box in the seen frame (written to 2 decimals)
    assert overall[1] < overall[0]  # the same box in stored pixels is the wrong frame
    assert overall[2] == 0.0 and metrics["gt_error"][2] == 1  # malformed ground truth scores 0, counted
    # one scalar per response, on its last valid token (where EasyR1's advantages read it)
    lengths = batch.batch["response_mask"].sum(-1)
    for i, length in enumerate(lengths.tolist()):
        assert rewards[i, length - 1].item() == pytest.approx(overall[i])
        assert torch.count_nonzero(rewards[i, : length - 1]) == 0 and torch.count_nonzero(rewards[i, length:]) == 0
    # every key the reward returns is logged as reward/<key>: all present, numeric, one per response
    assert set(metrics) == set(SCORE_KEYS)
    assert all(len(values) == 3 and all(isinstance(v, float | int) for v in values) for values in metrics.values())
