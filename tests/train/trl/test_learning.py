"""The learning check: GRPO with the LOCUS reward raises a tiny model's held-out greedy IoU, on CPU, in CI.

It runs :func:`locus_train.trl.demo.run_demo`, the same code as ``make demo-train`` (see that module for the data,
the warm start and what the check does and does not prove).
"""

import pytest

from locus_train.trl.demo import run_demo

from .conftest import DEMO_CONFIG


@pytest.mark.slow  # ~85 s: SFT warm start and 40 GRPO steps
def test_grpo_raises_held_out_greedy_iou(tiny_qwen2_5_vl, tmp_path):
    summary = run_demo(DEMO_CONFIG, tmp_path, steps=40, checkpoint=tiny_qwen2_5_vl)
    before, after = summary["held_out_greedy_iou_before"], summary["held_out_greedy_iou_after"]
    print(summary)
    # the precondition that makes the check meaningful: the warm start does not already prefer the bottom-right
    assert before <= 0.35, summary
    # a clear margin, and above what any policy without a bottom-right preference can reach
    assert after >= before + 0.3 and after >= 0.5, summary
    assert summary["train_iou_last_log"] > summary["train_iou_first_log"], summary
