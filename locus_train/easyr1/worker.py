"""EasyR1's FSDP worker with the crop-tool rollout, and multi-modal inputs built per trajectory.

Two changes to ``FSDPWorker``, both by overriding a private helper (the ``@register``-ed remote methods stay
EasyR1's):

* ``_build_rollout``: EasyR1 builds its vLLM rollout and sharding manager as always; the rollout is then adopted by
  :class:`.rollout.MultiTurnRollout` (same engine, sampling params and LoRA settings), with the recipe's ``lfpc:``
  section and the reward's coordinate frame.
* ``_process_multi_modal_inputs``: EasyR1 processes the images of one row per ``uid`` and hands that row's
  ``pixel_values`` to every row with the same uid -- all n rollouts of a prompt share it, right while their images
  were the prompt's alone. With crops, siblings hold different images, so the rows are keyed by their own
  ``traj_id`` (the rollout writes one per trajectory) for the duration of EasyR1's own function: the same
  processing, one entry per trajectory, and the same cache across the log-prob and update calls of one batch.
"""

from typing import Any

from verl.protocol import DataProto
from verl.workers.fsdp_workers import FSDPWorker

from locus_reward.options import LfpcOptions
from locus_train.easyr1.rollout import MultiTurnRollout


class MultiTurnFSDPWorker(FSDPWorker):
    """``FSDPWorker`` whose rollout runs the crop-tool loop (``config.rollout.lfpc`` holds the ``lfpc:`` section)."""

    def _build_rollout(self) -> None:
        super()._build_rollout()
        coord_frame = LfpcOptions.from_kwargs(self.config.reward.reward_function_kwargs).coord_frame
        self.rollout = MultiTurnRollout.adopt(self.rollout, self.processor, self.config.rollout.lfpc, coord_frame)

    def _process_multi_modal_inputs(self, data: DataProto) -> None:
        process_per_trajectory(self, data)


def process_per_trajectory(worker: Any, data: DataProto) -> None:
    """EasyR1's ``FSDPWorker._process_multi_modal_inputs`` with each row keyed by its ``traj_id`` instead of its
    prompt's ``uid`` (rows without ``traj_id``, single-turn batches, keep EasyR1's behaviour)."""
    batch = data.non_tensor_batch
    if "traj_id" not in batch or "multi_modal_data" not in batch:
        return FSDPWorker._process_multi_modal_inputs(worker, data)
    uid = batch["uid"]
    batch["uid"] = batch["traj_id"]
    try:
        FSDPWorker._process_multi_modal_inputs(worker, data)
    finally:
        batch["uid"] = uid
