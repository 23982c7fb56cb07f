"""EasyR1's reward manager for multi-turn batches: the reward reads the whole trajectory.

``AutoRewardManager`` decodes ``responses[i][:sum(response_mask[i])]`` and puts the score on that position. In a
multi-turn row the mask is 0 on every tool turn in the middle, so that prefix stops short of the final answer: the
reward would score a truncated trajectory, and the score would land on a tool token. Here the length is taken from
``attention_mask[:, -R:]`` -- every real response token, model and tool turns alike -- by handing EasyR1's own
manager a view of the batch whose ``response_mask`` is that attention mask. The reward function then sees the
trajectory as the loop wrote it (tool turns included; special tokens dropped per ``worker.reward.skip_special_tokens``)
and the score sits on the last token, the end of the last model turn.

The rollout's per-trajectory figures (``rollout_*``, :data:`.batch.ROLLOUT_METRICS`) are added to the reward's
metrics, so EasyR1's trainer logs them as ``reward/rollout_*`` (training and validation) beside the reward's keys:
the training dynamics of LFPC's Figs. 5-6 (turns, tool calls, runs out of turns, crop tokens).
"""

from typing import Any

import torch
from tensordict import TensorDict
from verl.protocol import DataProto
from verl.workers.reward import AutoRewardManager

from locus_train.easyr1.batch import ROLLOUT_METRICS


class MultiTurnRewardManager(AutoRewardManager):
    """``AutoRewardManager`` that decodes whole trajectories and logs the rollout's figures."""

    def compute_reward(self, data: DataProto) -> tuple[torch.Tensor, dict[str, list[Any]]]:
        responses = data.batch["responses"]
        view = DataProto(
            batch=TensorDict(
                {"responses": responses, "response_mask": data.batch["attention_mask"][:, -responses.size(-1) :]},
                batch_size=len(data),
            ),
            non_tensor_batch={"ground_truth": data.non_tensor_batch["ground_truth"]},
            meta_info=data.meta_info,
        )
        rewards, metrics = super().compute_reward(view)
        for key in ROLLOUT_METRICS:
            if key in data.non_tensor_batch:
                metrics[key] = [float(value) for value in data.non_tensor_batch[key]]
        return rewards, metrics
