"""The assembler: finished trajectories -> the batch EasyR1's unchanged actor, reference and GRPO code train on.

Per row (B prompts x n rollouts, the n rollouts of a prompt adjacent, as ``DataProto.repeat(interleave=True)``
lays out the rest of the batch), the keys ``vLLMRollout.generate_sequences`` returns, with multi-turn contents:

* ``prompts``: the dataset's left-padded ``input_ids`` (pads expanded), repeated;
* ``responses``: every token after the prompt -- model turns and tool turns, image pads expanded -- right-padded with
  the pad token to exactly ``response_length`` (ranks' outputs are concatenated, so every rank's width must agree);
* ``input_ids`` = prompts + responses; ``attention_mask``: the prompt's, then 1 on every real response token;
* ``response_mask``: 1 only on tokens the policy sampled (each model turn, its ``<|im_end|>`` included), 0 on tool
  turns and padding -- built per turn, never by cutting at the first end-of-turn token;
* ``position_ids`` (Qwen-VL, 4 rows): row 0 one ``arange`` over the real tokens (left pads 0; right pads continue
  it, as EasyR1's rollout extends it); rows 1-3 EasyR1's ``get_rope_index`` over the WHOLE sequence with the grids of
  every image in order, so a crop's mrope positions follow the tokens before it;
* ``multi_modal_data``: a NEW dict per row, ``{"images": the prompt's stored entries + the row's crops}`` (an
  ``np.repeat``-ed dict would be shared by the group, and one rollout's crops would leak into its siblings');
* extras: ``traj_id`` (each row's own key: the worker's multi-modal cache is per trajectory, not per prompt) and the
  ``rollout_*`` figures the reward manager logs (:data:`ROLLOUT_METRICS`).
"""

import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from tensordict import TensorDict
from verl.protocol import DataProto


ROLLOUT_METRICS = (
    "rollout_turns",
    "rollout_tool_calls",
    "rollout_crops",
    "rollout_max_turns",
    "rollout_crop_tokens",
    "rollout_tool_tokens",
)
"""per-trajectory figures logged with the reward's (as ``reward/<name>``): assistant turns, calls the tool ran,
crops it returned, 1 when the trajectory ran out of turns, crop visual tokens, tool tokens masked out of the loss"""


@dataclass
class Trajectory:
    """One row of the rollout's output: the response after the prompt and the row's images."""

    response_ids: list[int]
    """model and tool turns, image pads expanded"""
    response_mask: list[int]
    """1 where the policy sampled the token, 0 where the tool wrote it"""
    images: list[Any]
    """``multi_modal_data["images"]``: the prompt's stored entries, then the crops in order"""
    image_grid_thw: list[list[int]]
    """each image's grid, in the same order"""
    extras: dict[str, Any] = field(default_factory=dict)
    """per-row values returned beside the tensors (the ``rollout_*`` figures)"""


def rope_index_function(processor: Any):
    """EasyR1's ``get_rope_index`` for the processor's family (the dataset picks it by the same class names)."""
    if "Qwen2VLImageProcessor" not in processor.image_processor.__class__.__name__:
        raise ValueError(f"{processor.__class__.__name__} is no Qwen-VL processor; the crop-tool rollout needs mrope")
    if "Qwen3VLProcessor" in processor.__class__.__name__:
        from verl.models.transformers.qwen3_vl import get_rope_index
    else:
        from verl.models.transformers.qwen2_vl import get_rope_index
    return get_rope_index


def text_positions(mask: torch.Tensor) -> torch.Tensor:
    """Row 0 of the position ids: 0..L-1 over the real tokens, 0 on left pads, continuing over right pads.

    >>> text_positions(torch.tensor([0, 0, 1, 1, 1, 0])).tolist()
    [0, 0, 0, 1, 2, 3]
    """
    positions = torch.zeros_like(mask)
    real = mask.bool()
    count = int(real.sum())
    positions[real] = torch.arange(count, dtype=mask.dtype)
    if count:
        last = int(real.nonzero()[-1])
        tail = torch.arange(1, mask.numel() - last, dtype=mask.dtype)
        positions[last + 1 :] = count - 1 + tail
    return positions


def assemble(
    prompts: torch.Tensor,
    prompt_mask: torch.Tensor,
    trajectories: list[Trajectory],
    response_length: int,
    pad_token_id: int,
    processor: Any,
    meta_info: dict[str, Any] | None = None,
) -> DataProto:
    """The rollout's output for ``trajectories`` (row i continues prompt row i of ``prompts``)."""
    rows = len(trajectories)
    if prompts.size(0) != rows:
        raise ValueError(f"{prompts.size(0)} prompt rows for {rows} trajectories")
    responses = torch.full((rows, response_length), pad_token_id, dtype=prompts.dtype)
    response_attention = torch.zeros((rows, response_length), dtype=prompt_mask.dtype)
    response_mask = torch.zeros_like(response_attention)
    for row, trajectory in enumerate(trajectories):
        length = len(trajectory.response_ids)
        if length > response_length or len(trajectory.response_mask) != length:
            raise RuntimeError(
                f"row {row}: a response of {length} tokens does not fit response_length {response_length} (the "
                "loop's token accounting and the streams disagree)"
            )
        responses[row, :length] = torch.tensor(trajectory.response_ids, dtype=prompts.dtype)
        response_attention[row, :length] = 1
        response_mask[row, :length] = torch.tensor(trajectory.response_mask, dtype=prompt_mask.dtype)
    input_ids = torch.cat([prompts, responses], dim=-1)
    attention_mask = torch.cat([prompt_mask, response_attention], dim=-1)

    get_rope_index = rope_index_function(processor)
    position_ids = torch.empty((rows, 4, input_ids.size(1)), dtype=torch.long)
    for row, trajectory in enumerate(trajectories):
        grids = torch.tensor(trajectory.image_grid_thw, dtype=torch.long) if trajectory.image_grid_thw else None
        position_ids[row, 1:] = get_rope_index(
            processor, input_ids=input_ids[row], image_grid_thw=grids, attention_mask=attention_mask[row]
        )
        position_ids[row, 0] = text_positions(attention_mask[row])

    multi_modal_data = np.empty(rows, dtype=object)
    for row, trajectory in enumerate(trajectories):
        multi_modal_data[row] = {"images": list(trajectory.images)}  # a new dict and list per row
    non_tensors: dict[str, np.ndarray] = {"multi_modal_data": multi_modal_data}
    non_tensors["traj_id"] = np.array([str(uuid.uuid4()) for _ in range(rows)], dtype=object)
    for key in sorted({key for trajectory in trajectories for key in trajectory.extras}):
        values = np.empty(rows, dtype=object)
        values[:] = [trajectory.extras.get(key) for trajectory in trajectories]
        non_tensors[key] = values
    batch = TensorDict(
        {
            "prompts": prompts,
            "responses": responses,
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "response_mask": response_mask,
            "position_ids": position_ids,
        },
        batch_size=rows,
    )
    return DataProto(batch=batch, non_tensor_batch=non_tensors, meta_info=dict(meta_info or {}))
