"""A real GRPOTrainer run of LOCUS on the `make demo` dataset with tiny random Qwen2.5-VL and Qwen3-VL models.

What it proves: the whole TRL path runs with LOCUS data, prompts, frames and reward (generation from two images,
reward, advantages, loss, optimizer steps, TRL's logging of the LOCUS metrics in training and on the val split,
saving, reloading, generating). What it cannot prove: learning. A random model never writes a parsable box, so every
LOCUS reward is 0 and every advantage 0; a small entropy bonus (grpo.entropy_coef) gives the update a gradient so
the test can see parameters move. test_learning.py is the check that the LOCUS reward itself moves the policy.
"""

import math

import pytest
import torch
from safetensors.torch import load_file

from locus_agent.processor import load_processor
from locus_train.trl.config import load_config
from locus_train.trl.rewards import LOGGED_KEYS, METRIC_PREFIX
from locus_train.trl.train import CONFIG_NAME, run

from .conftest import DEMO_CONFIG, demo_overrides


RUNS = {
    # full fine-tuning of Qwen2.5-VL (absolute pixels), and LoRA on a Qwen3-VL-Thinking template (0-1000, <think> open)
    "qwen2_5_vl_full": ("tiny_qwen2_5_vl", ["reward.coord_frame=qwen2_5_vl"]),
    "qwen3_vl_thinking_lora": (
        "tiny_qwen3_vl_thinking",
        [
            "reward.coord_frame=qwen3_vl",
            "reward.think_prefilled=true",
            "model.use_peft=true",
            "model.lora_r=8",
            "grpo.learning_rate=1e-2",
        ],
    ),
}


@pytest.mark.slow  # 17-30 s per run: real GRPO steps, evaluation and a save
@pytest.mark.parametrize("name", sorted(RUNS))
def test_grpo_loop_runs_logs_saves_and_reloads(name, request, demo_data, tmp_path):
    fixture, extra = RUNS[name]
    checkpoint = request.getfixturevalue(fixture)
    overrides = demo_overrides(
        checkpoint,
        demo_data,
        tmp_path,
        *extra,
        "grpo.max_steps=3",
        "grpo.eval_steps=3",
        "grpo.max_completion_length=32",
        "grpo.entropy_coef=0.05",
        "data.max_val_samples=4",
    )
    trainer = run(load_config(DEMO_CONFIG, overrides))
    out = tmp_path / "run"

    history = trainer.state.log_history
    train_logs = [h for h in history if "loss" in h]
    eval_logs = [h for h in history if "eval_loss" in h]
    assert trainer.state.global_step == 3 and len(train_logs) == 3
    assert all(math.isfinite(h["loss"]) for h in train_logs)
    # what EasyR1's validation logs, through TRL's logging: per training step, and on the val split at eval_steps
    for key in LOGGED_KEYS:
        assert all(f"{METRIC_PREFIX}/{key}" in h for h in train_logs), key
        assert eval_logs and f"eval_{METRIC_PREFIX}/{key}" in eval_logs[-1], key
    assert train_logs[0][f"{METRIC_PREFIX}/parse_fail"] == 1.0  # a random model: honest zeros, not missing values
    assert (out / "trainer_state.json").is_file()  # what `locus-eval plot-training` reads
    assert (out / CONFIG_NAME).is_file()

    model = trainer.model
    if "lora" in name:
        # LoRA B starts at zero: any non-zero entry is an update, and only adapter weights were trainable
        lora_b = [p for n, p in model.named_parameters() if "lora_B" in n]
        assert lora_b and any(p.abs().sum() > 0 for p in lora_b)
        assert all("lora_" in n for n, p in model.named_parameters() if p.requires_grad)
        assert (out / "adapter_model.safetensors").is_file()
    else:
        before = load_file(checkpoint / "model.safetensors")
        after = load_file(out / "model.safetensors")
        assert any(not torch.equal(before[k], after[k]) for k in before)

    # reload what was saved, as a user would, and generate once from a LOCUS prompt with both images
    import transformers

    processor = load_processor(out)
    reloaded = transformers.AutoModelForImageTextToText.from_pretrained(checkpoint if "lora" in name else out)
    if "lora" in name:
        from peft import PeftModel

        reloaded = PeftModel.from_pretrained(reloaded, out)
    row = trainer.train_dataset[0]
    text = processor.apply_chat_template(row["prompt"], add_generation_prompt=True)
    inputs = processor(text=[text], images=row["images"], return_tensors="pt")
    generated = reloaded.generate(**inputs, max_new_tokens=4, do_sample=False)
    assert generated.shape[1] == inputs["input_ids"].shape[1] + 4 or generated.shape[1] > inputs["input_ids"].shape[1]
