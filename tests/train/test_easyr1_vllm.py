"""The crop-tool rollout on real vLLM (GPU machines with vLLM and EasyR1 only; CPU CI skips it).

Everything else of the rollout is covered on CPU (tests/train/easyr1), where an engine behind vLLM's interface
stands in; this sketches the one call that needs the GPU: ``vllm.LLM.generate`` with one ``{"prompt_token_ids",
"multi_modal_data"}`` dict and one ``SamplingParams`` per request (the vLLM stream, one pad per image), and checks
what only real vLLM can show: it accepts that stream, honours the per-request seeds and the vision-marker ban, and
its samples train (the HF forward takes the assembled batch). Set ``LOCUS_VLLM_MODEL`` to a local Qwen2.5-VL
checkpoint (e.g. Qwen2.5-VL-3B-Instruct); vLLM cannot load the tiny test checkpoints (head size 16).
"""

import os

import pytest

from tests.testing_utils import require_easyr1, require_gpu, require_vllm


pytestmark = [require_gpu, require_vllm, require_easyr1, pytest.mark.gpu, pytest.mark.vllm]


def test_multiturn_rollout_on_vllm(tmp_path):
    # not run on CPU CI: the vLLM path is this file's only subject
    model = os.environ.get("LOCUS_VLLM_MODEL")
    if not model:
        pytest.skip("set LOCUS_VLLM_MODEL to a local Qwen2.5-VL checkpoint directory")
    import torch
    from transformers import AutoModelForImageTextToText
    from verl.workers.actor.dp_actor import DataParallelPPOActor
    from vllm import LLM, SamplingParams

    from locus_train.easyr1.rollout import MultiTurnRollout, vision_logit_bias

    from .easyr1.lfpc_rows import write_lfpc_data
    from .easyr1.lfpc_setup import generation_batch, lfpc_config, make_setup, worker

    data = write_lfpc_data(tmp_path / "data")
    overrides = ("worker.rollout.n=4", "data.max_prompt_length=2048", "data.max_pixels=200704")
    config = lfpc_config(1, data, model, overrides=overrides)
    setup = make_setup(config, model, "qwen2_5_vl")
    rollout_config = config.worker.rollout
    llm = LLM(
        model=model,
        seed=rollout_config.seed,
        max_model_len=rollout_config.prompt_length + rollout_config.response_length,
        limit_mm_per_prompt={"image": rollout_config.limit_images},
        gpu_memory_utilization=0.4,
        enforce_eager=True,
    )
    sampling = SamplingParams(n=rollout_config.n, temperature=1.0, logit_bias=vision_logit_bias(setup.processor))
    rollout = MultiTurnRollout.with_engine(
        llm, rollout_config, setup.processor, rollout_config.lfpc, "qwen2_5_vl", sampling_params=sampling
    )
    batch, generation = generation_batch(setup, [0, 1])
    output = rollout.generate_sequences(generation)
    batch = batch.repeat(rollout_config.n, interleave=True).union(output)
    responses = batch.batch["responses"]
    assert not torch.equal(responses[0], responses[1])  # per-request seeds: siblings differ
    worker(setup.processor)._process_multi_modal_inputs(batch)
    for inputs in batch.non_tensor_batch["multi_modal_inputs"]:  # FSDP would move them; a plain module does not
        inputs.update({key: value.cuda() for key, value in inputs.items()})
    batch.meta_info["temperature"] = 1.0
    actor_model = AutoModelForImageTextToText.from_pretrained(model, dtype=torch.bfloat16).cuda()
    actor_config = config.worker.actor
    actor_config.micro_batch_size_per_device_for_experience = 1
    log_probs = DataParallelPPOActor(actor_config, actor_model).compute_log_prob(batch.to("cuda"))
    assert torch.isfinite(log_probs).all()  # no "Image features and image tokens do not match"
