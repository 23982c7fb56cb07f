"""The tiny TRL run in bf16 on CUDA, so the GPU path (dtype, device placement, attention kernel) runs wherever a GPU
is available (skipped on CPU CI)."""

import math

import torch

from locus_train.trl.config import load_config
from locus_train.trl.train import run
from tests.testing_utils import require_gpu

from .conftest import DEMO_CONFIG, demo_overrides


@require_gpu
def test_tiny_grpo_run_in_bf16_on_cuda(tiny_qwen2_5_vl, demo_data, tmp_path):
    overrides = demo_overrides(
        tiny_qwen2_5_vl,
        demo_data,
        tmp_path,
        "grpo.use_cpu=false",
        "grpo.bf16=true",
        "model.dtype=bfloat16",
        "model.attn_implementation=sdpa",
        "grpo.max_steps=3",
        "grpo.eval_steps=3",
        "grpo.entropy_coef=0.05",
        "data.max_val_samples=4",
    )
    trainer = run(load_config(DEMO_CONFIG, overrides))
    parameter = next(trainer.model.parameters())
    assert parameter.device.type == "cuda" and parameter.dtype == torch.bfloat16
    assert trainer.model.config._attn_implementation == "sdpa"
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert len(losses) == 3 and all(math.isfinite(v) for v in losses)
    assert any("eval_cue_search/iou" in h for h in trainer.state.log_history)
