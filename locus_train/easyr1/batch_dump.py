"""``locus-train easyr1-step --dump-batch DIR``: the first step's batch as it enters the actor update, written for a
reader (see :mod:`locus_train.easyr1.step`)."""

import json
from pathlib import Path
from typing import Any

from locus_data.outputs import atomic_path, atomic_write_text


# ----------------------------------------------------------------------------------------------------------------
# --dump-batch
# ----------------------------------------------------------------------------------------------------------------

DUMP_TENSORS = ("input_ids", "attention_mask", "position_ids", "responses", "response_mask")


def readable(tokenizer: Any, ids: list[int]) -> str:
    """Token ids as text with special tokens kept and each run of image pads written once."""
    import re

    text = tokenizer.decode(ids, skip_special_tokens=False)
    return re.sub(r"(<\|image_pad\|>)+", "<|image_pad|>", text)


def dump_batch(batch: Any, out: Path, tokenizer: Any, scores: Any) -> None:
    """Write the batch as it enters the actor update (see the module docstring); files appear whole."""
    import torch
    from verl.utils.dataset import process_image

    (out / "images").mkdir(parents=True, exist_ok=True)
    tensors = {key: batch.batch[key].clone() for key in DUMP_TENSORS}
    inputs = batch.non_tensor_batch.get("multi_modal_inputs")
    grids = [row["image_grid_thw"] for row in inputs if "image_grid_thw" in row] if inputs is not None else []
    if grids:
        tensors["image_grid_thw"] = torch.cat(grids)
    with atomic_path(out / "batch.pt") as temporary:
        torch.save(tensors, temporary)
    meta = batch.meta_info
    response_length = batch.batch["responses"].size(-1)
    lines = []
    for row in range(len(batch)):
        images = (batch.non_tensor_batch.get("multi_modal_data", [None] * len(batch))[row] or {}).get("images", [])
        for k, image in enumerate(images):
            process_image(image, meta["min_pixels"], meta["max_pixels"]).save(out / "images" / f"{row}_{k}.png")
        prompt_mask = batch.batch["attention_mask"][row, :-response_length].bool()
        response_mask = batch.batch["attention_mask"][row, -response_length:].bool()
        lines.append(
            {
                "row": row,
                "uid": str(batch.non_tensor_batch["uid"][row]),
                "prompt": readable(tokenizer, batch.batch["prompts"][row][prompt_mask].tolist()),
                "response": readable(tokenizer, batch.batch["responses"][row][response_mask].tolist()),
                "images": len(images),
                "reward": float(scores[row].sum()),
                "response_tokens": int(response_mask.sum()),
                "policy_tokens": int(batch.batch["response_mask"][row].sum()),
            }
        )
    atomic_write_text(out / "rows.jsonl", "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines))
