"""One GRPO step through EasyR1's own code on CPU: rollout post-processing, reward, advantages, log-probs, update.

Only the generation engine is replaced: :class:`HFGenerateEngine` answers ``LLM.generate`` with Hugging Face
``generate`` on the same tiny model, from exactly the inputs EasyR1's ``vLLMRollout.generate_sequences`` hands vLLM
(raw prompt ids + images processed by EasyR1). Everything around it is EasyR1's: the dataset, collate_fn, the
rollout's response padding and mrope extension, AutoRewardManager, FSDPWorker's multi-modal inputs, the GRPO
estimator and DataParallelPPOActor (a plain module: no FSDP, padding_free off, a one-process gloo group).
"""

import copy
import types
import uuid

import numpy as np
import pytest
import torch
import torch.distributed as dist

from locus_agent.processor import load_processor
from locus_reward.frames import to_model
from locus_reward.ground_truth import loads
from locus_reward.parsing import format_answer
from tests.testing_utils import require_easyr1

from ..conftest import REPO_ROOT
from .conftest import easyr1_config, launcher_overrides
from .test_dataset import rlhf_dataset


pytestmark = require_easyr1

PROMPTS, N, RESPONSE_LENGTH = 2, 4, 64
BACKBONES = {"qwen2_5_vl": "locus_qwen2_5_vl_7b", "qwen3_vl_thinking": "locus_qwen3_vl_4b"}


class HFGenerateEngine:
    """``vllm.LLM.generate`` for EasyR1's rollout, by Hugging Face generate (vLLM needs a GPU).

    vLLM expands each image placeholder of ``prompt_token_ids`` into the image's tokens itself; so does this, from
    the grid the processor gives for the images EasyR1 processed. The expanded prompts are kept for the test. The
    first sample of each prompt is constrained to ``scripted[i]`` (a right answer) so a group's rewards differ and
    GRPO has a signal; the others are sampled freely from the random-weight model.
    """

    def __init__(self, model, processor, scripted: list[list[int]]):
        self.model, self.processor, self.scripted = model, processor, scripted
        self.expanded: list[list[int]] = []

    def generate(self, prompts, sampling_params, lora_request=None, use_tqdm=False):
        merge = self.processor.image_processor.merge_size**2
        image_token = self.processor.image_token_id
        eos = self.processor.tokenizer.eos_token_id
        completions = []
        for index, request in enumerate(prompts):
            vision = self.processor.image_processor(images=request["multi_modal_data"]["image"], return_tensors="pt")
            counts = iter((vision["image_grid_thw"].prod(-1) // merge).tolist())
            ids = []
            for token in request["prompt_token_ids"]:
                ids += [image_token] * next(counts) if token == image_token else [token]
            self.expanded.append(ids)
            inputs = {"input_ids": torch.tensor([ids]), "attention_mask": torch.ones(1, len(ids), dtype=torch.long)}
            inputs.update(vision)
            common = dict(max_new_tokens=sampling_params.max_tokens, eos_token_id=eos, pad_token_id=eos)
            # EasyR1 biases the image token by -100 so vLLM never emits one (it would break the actor's forward)
            common["suppress_tokens"] = [token for token, bias in sampling_params.logit_bias.items() if bias <= -100]
            target, start = self.scripted[index] + [eos], len(ids)

            def next_token(_: int, sequence: torch.Tensor, target=target, start=start) -> list[int]:
                return [target[len(sequence) - start]]

            forced = self.model.generate(**inputs, do_sample=False, prefix_allowed_tokens_fn=next_token, **common)
            free = self.model.generate(
                **inputs,
                do_sample=True,
                temperature=sampling_params.temperature,
                top_p=sampling_params.top_p,
                num_return_sequences=sampling_params.n - 1,
                **common,
            )
            samples = [forced[0, len(ids) :]] + [row[len(ids) :] for row in free]
            completions.append(
                types.SimpleNamespace(outputs=[types.SimpleNamespace(token_ids=s.tolist()) for s in samples])
            )
        return completions


def rollout_for(config, processor, engine):
    """EasyR1's vLLMRollout with the engine above: built without __init__, which would start vLLM."""
    from verl.workers.rollout.vllm_rollout_spmd import _get_logit_bias, vLLMRollout

    rollout = vLLMRollout.__new__(vLLMRollout)
    rollout.config, rollout.inference_engine = config.worker.rollout, engine
    rollout.pad_token_id = processor.tokenizer.pad_token_id
    rollout.return_video_metadata, rollout.use_tqdm, rollout.lora_kwargs = False, False, {}
    rollout.sampling_params = types.SimpleNamespace(
        n=config.worker.rollout.n,
        temperature=config.worker.rollout.temperature,
        top_p=config.worker.rollout.top_p,
        max_tokens=config.worker.rollout.response_length,
        logit_bias=_get_logit_bias(processor),
    )
    return rollout


@pytest.fixture
def gloo_group(tmp_path):
    # DataParallelPPOActor.update_policy all-reduces the token count: a one-process group serves it on CPU
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'gloo'}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


@pytest.mark.slow  # ~7 s per backbone: a whole EasyR1 step through its own workers
@pytest.mark.parametrize("backbone", sorted(BACKBONES))
def test_one_grpo_step(backbone, small_data, checkpoints, gloo_group):
    # the part of a step LOCUS changes most: two images per prompt through EasyR1's multi-modal path and an update
    from transformers import AutoModelForImageTextToText
    from verl.protocol import DataProto
    from verl.trainer.ray_trainer import compute_advantage
    from verl.utils.dataset import collate_fn
    from verl.workers.actor.dp_actor import DataParallelPPOActor
    from verl.workers.fsdp_workers import FSDPWorker
    from verl.workers.reward import AutoRewardManager

    recipe, model_path = REPO_ROOT / "config" / f"{BACKBONES[backbone]}.yaml", checkpoints[backbone]
    overrides = launcher_overrides(recipe, [], small_data, model_path) + [
        f"worker.rollout.n={N}",
        f"data.max_response_length={RESPONSE_LENGTH}",
        f"worker.actor.global_batch_size={PROMPTS}",  # one mini-batch: the whole step is one update
        "worker.actor.padding_free=false",  # padding-free needs flash-attn's varlen kernels
        "worker.actor.use_torch_compile=false",  # compiling the log-prob kernel costs more than the step on CPU
        "worker.actor.dynamic_batching=false",  # seqlen_balancing's token counts are all-reduced on CUDA tensors
    ]
    config = easyr1_config(recipe, overrides=overrides)
    actor_config = config.worker.actor
    # what FSDPWorker._init_dist_mesh does for one device
    actor_config.global_batch_size_per_device = actor_config.global_batch_size * config.worker.rollout.n
    processor = load_processor(model_path)
    torch.manual_seed(0)
    model = AutoModelForImageTextToText.from_pretrained(model_path, torch_dtype=torch.float32)
    reference = copy.deepcopy(model)

    # 1. the batch the trainer makes (ray_trainer._make_batch_data): dataset rows, collate, uid, pop for generation
    dataset = rlhf_dataset(config, "val", processor)
    items = [dataset[i] for i in range(PROMPTS)]
    meta = {"min_pixels": config.data.min_pixels, "max_pixels": config.data.max_pixels, "video_fps": 2.0}
    batch = DataProto.from_single_dict(collate_fn(items), meta_info=meta)
    batch.non_tensor_batch["uid"] = np.array([str(uuid.uuid4()) for _ in range(PROMPTS)], dtype=object)
    gen_batch = batch.pop(
        batch_keys=["input_ids", "attention_mask", "position_ids"],
        non_tensor_batch_keys=["raw_prompt_ids", "multi_modal_data"],
        meta_info_keys=["min_pixels", "max_pixels", "video_fps"],
    )
    gen_batch.meta_info.update(
        eos_token_id=processor.tokenizer.eos_token_id, pad_token_id=processor.tokenizer.pad_token_id
    )

    # 2. rollout: EasyR1's generate_sequences around HF generate; one right answer per group
    kwargs = config.worker.reward.reward_function_kwargs
    scripted = []
    for answer in batch.non_tensor_batch["ground_truth"]:
        gt = loads(answer)
        box = to_model(
            gt.box,
            gt.width,
            gt.height,
            kwargs["coord_frame"],
            min_pixels=kwargs["min_pixels"],
            max_pixels=kwargs["max_pixels"],
        )
        text = ("" if kwargs["think_prefilled"] else "<think>") + f"Here.</think><answer>{format_answer(box)}</answer>"
        scripted.append(processor.tokenizer.encode(text, add_special_tokens=False))
    engine = HFGenerateEngine(model, processor, scripted)
    output = rollout_for(config, processor, engine).generate_sequences(gen_batch)
    # the prompt vLLM gets, once it expands the image placeholders, is the prompt the actor scores
    for i, item in enumerate(items):
        assert engine.expanded[i] == item["input_ids"][item["attention_mask"].bool()].tolist()
    batch = batch.repeat(repeat_times=N, interleave=True).union(output)
    assert batch.batch["responses"].shape == (PROMPTS * N, RESPONSE_LENGTH)

    # 3. multi-modal inputs exactly as FSDPWorker builds them (cached per uid), two images of different grids
    FSDPWorker._process_multi_modal_inputs(types.SimpleNamespace(_cache={}, processor=processor), batch)
    inputs = batch.non_tensor_batch["multi_modal_inputs"]
    grids = inputs[0]["image_grid_thw"].tolist()
    assert len(grids) == 2 and grids[0] != grids[1]  # the full image and the much smaller cue
    # mrope ids of prompt + response (dataset's get_rope_index, extended by the rollout) equal the model's own
    full_ids, full_mask = batch.batch["input_ids"], batch.batch["attention_mask"]
    for row in range(len(batch)):
        mask = full_mask[row].bool()
        expected, _ = model.model.get_rope_index(
            full_ids[row : row + 1][:, mask], inputs[row]["image_grid_thw"], None, torch.ones(1, int(mask.sum()))
        )
        assert torch.equal(batch.batch["position_ids"][row, 1:, mask], expected[:, 0])

    # 4. reward on the last response token, then GRPO advantages grouped by uid (ray_trainer.compute_advantage)
    manager = AutoRewardManager(config.worker.reward, processor.tokenizer)
    scores, metrics = manager.compute_reward(batch)
    overall = np.array(metrics["overall"]).reshape(PROMPTS, N)
    assert (overall[:, 0] > 0.9).all() and (overall[:, 1:] < 0.9).all()  # scripted right answers vs random text
    batch.batch["token_level_scores"] = batch.batch["token_level_rewards"] = scores
    batch = compute_advantage(batch, adv_estimator=config.algorithm.adv_estimator)
    advantages = batch.batch["advantages"][:, 0].reshape(PROMPTS, N)
    assert (advantages[:, 0] > 0).all() and (advantages[:, 1:] < 0).all()
    assert torch.allclose(advantages.sum(-1), torch.zeros(PROMPTS), atol=1e-4)  # normalised within each group

    # 5. old and reference log-probs (compute_log_probs / compute_ref_log_probs), then the policy update
    optimizer = torch.optim.AdamW(
        model.parameters(),
        lr=actor_config.optim.lr,
        betas=actor_config.optim.betas,
        weight_decay=actor_config.optim.weight_decay,
    )
    actor = DataParallelPPOActor(actor_config, model, optimizer)
    ref_policy = DataParallelPPOActor(config.worker.ref, reference)
    batch.meta_info["temperature"] = config.worker.rollout.temperature
    batch.batch["old_log_probs"] = actor.compute_log_prob(batch)
    batch.batch["ref_log_probs"] = ref_policy.compute_log_prob(batch)
    assert torch.equal(batch.batch["old_log_probs"], batch.batch["ref_log_probs"])  # same weights before the update
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    metrics = actor.update_policy(batch)
    assert actor_config.use_kl_loss and "actor/kl_loss" in metrics  # the recipe's KL-loss settings reached the actor
    assert all(np.isfinite(v).all() for v in metrics.values())
    assert metrics["actor/grad_norm"][0] > 0
    changed = [name for name, p in model.named_parameters() if not torch.equal(p, before[name])]
    assert len(changed) == len(before)
