"""``locus-train easyr1-step``: N GRPO steps of a recipe through EasyR1's own code, on a CPU.

::

    locus-train easyr1-step --config RECIPE [key=value ...] --model CKPT --data DIR --steps N \\
        --rollout hf|replay:FILE --out DIR [--dump-batch DIR] [--cpu]

For trying a recipe on a laptop before booking a cluster, and for CI. Each step is EasyR1 b44b311's step (its
``RayPPOTrainer.fit``), on one process and with a plain (unsharded) module:

1. the batch ``_make_batch_data`` makes: ``RLHFDataset`` rows from ``DIR/train.parquet``, ``collate_fn``, a ``uid``
   per prompt, the generation keys popped, the rollout, then ``repeat(n, interleave=True).union(output)``;
2. the rollout: for an LFPC recipe (one with an ``lfpc:`` section)
   :class:`~locus_train.easyr1.rollout.MultiTurnRollout` (the crop-tool loop); for a LOCUS recipe EasyR1's own
   ``vLLMRollout.generate_sequences``. vLLM itself cannot run on a CPU; its ``generate`` is answered by Hugging Face
   ``generate`` on the policy being trained (``hf``) or by recorded turns (``replay:FILE``, ``locus_agent``'s
   JSONL: rollout k of a group uses the question's line k);
3. the reward manager (LFPC: :class:`~locus_train.easyr1.reward.MultiTurnRewardManager`; LOCUS: EasyR1's), the
   worker's multi-modal inputs (LFPC: per trajectory), ``compute_log_prob`` for the old and the reference policy,
   ``apply_kl_penalty`` when the KL is a reward penalty, ``compute_advantage`` (GRPO), and
   ``DataParallelPPOActor.update_policy`` with the recipe's optimizer settings.

What differs from a cluster run, all forced: one process (a one-process gloo group serves the actor's all-reduce),
no FSDP, float32, ``padding_free``/``dynamic_batching``/``use_torch_compile`` off (they need flash-attn, CUDA, or cost
more than a step here), the reference policy in float32, vision markers banned in single-turn sampling too.

``--cpu`` applies the CPU preset (:mod:`locus_train.easyr1.step_setup`: ``CPU_PRESET``, then ``CPU_PRESET_LFPC`` for
LFPC recipes): 2 prompts x 2 rollouts, short responses, low pixel caps; ``key=value`` overrides come after it and
win. EasyR1's padded (not padding-free) path is quadratic in sequence length on a CPU, so keep prompts and responses
short.

Outputs in ``--out DIR``: ``metrics.jsonl``, one object per step: ``step``, ``seconds``, ``reward_mean`` (mean
``overall``), ``tool_calls_mean`` (tool calls per trajectory; 0 single-turn), ``response_tokens`` (real response
tokens per trajectory, tool turns included), ``masked_tool_tokens`` (of those, the tool's, masked out of the loss),
``policy_loss``, ``grad_norm``, ``max_abs_param_delta`` (largest parameter change of the update), ``lr``, and every
reward key as ``reward/<key>`` (the LFPC reward's and the rollout's ``rollout_*``). ``--dump-batch DIR`` writes the
first step's batch as it enters the actor update: ``batch.pt`` (a dict of ``input_ids``, ``attention_mask``,
``position_ids``, ``responses``, ``response_mask`` and ``image_grid_thw`` when there are images),
``images/<row>_<k>.png`` (each row's images in order, as EasyR1's ``process_image`` hands them to the processor, the
crops included) and ``rows.jsonl`` (per row: the decoded prompt and response -- each run of image pads shown once --,
its reward and its number of images).

Bad input is a one-line error before any model loads: a data folder without ``train.parquet``, an LFPC row that is
not one view struct with its original's absolute path, a view image larger than its original, a row without boxes
under a Stage II recipe, a replay file without a line for some question, ``lfpc.max_turns`` below 1.
"""

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from locus_data.errors import UserError, reports_user_errors
from locus_data.yaml_config import read_yaml
from locus_train.easyr1.batch_dump import dump_batch
from locus_train.easyr1.config import LFPC_SECTION, is_stage2
from locus_train.easyr1.step_setup import (
    CPU_PRESET,
    CPU_PRESET_LFPC,
    FORCED,
    build_config,
    check_batches,
    check_lfpc_rows,
    parse_rollout,
    path_overrides,
    prepare_output,
    read_rows,
    rlhf_dataset,
)
from locus_train.recipe import RecipeError, recipe_root


METRIC_KEYS = (
    "step",
    "seconds",
    "reward_mean",
    "tool_calls_mean",
    "response_tokens",
    "masked_tool_tokens",
    "policy_loss",
    "grad_norm",
    "max_abs_param_delta",
    "lr",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="locus-train easyr1-step",
        description="N GRPO steps of a recipe through EasyR1's own code on a CPU (generation by HF generate or "
        "replayed turns instead of vLLM).",
    )
    parser.add_argument("--config", required=True, help="the recipe; LFPC recipes have an lfpc: section")
    parser.add_argument("overrides", nargs="*", help="EasyR1 (and lfpc.*) key=value overrides, after the preset")
    parser.add_argument("--model", required=True, help="checkpoint directory (a Qwen-VL model and its processor)")
    parser.add_argument("--data", required=True, type=Path, help="folder with train.parquet (and val.parquet)")
    parser.add_argument("--steps", type=int, default=2, help="GRPO steps (default 2)")
    parser.add_argument("--rollout", default="hf", help="hf (Hugging Face generate) or replay:FILE (recorded turns)")
    parser.add_argument("--out", required=True, type=Path, help="folder for metrics.jsonl")
    parser.add_argument("--dump-batch", type=Path, help="write the first step's batch (tensors, images, text) here")
    parser.add_argument("--cpu", action="store_true", help="apply the CPU preset of small batches and short responses")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    return run(args)


# ----------------------------------------------------------------------------------------------------------------
# the run
# ----------------------------------------------------------------------------------------------------------------


@reports_user_errors
def run(args: argparse.Namespace) -> int:
    recipe = Path(args.config).expanduser().resolve()
    root = recipe_root(recipe)
    raw = read_yaml(recipe, "recipe", RecipeError)
    multi_turn = LFPC_SECTION in raw
    if args.steps < 1:
        raise UserError(f"--steps must be >= 1, got {args.steps}")
    replay = parse_rollout(args.rollout)
    model_dir = Path(args.model).expanduser()
    if not (model_dir / "config.json").is_file():
        raise UserError(f"--model {args.model} is not a checkpoint folder (no config.json)")
    data = args.data.expanduser().resolve()
    preset = (CPU_PRESET + (CPU_PRESET_LFPC if multi_turn else [])) if args.cpu else []
    overrides = path_overrides(raw, root, data, str(model_dir.resolve())) + preset + FORCED + list(args.overrides)

    from locus_train.easyr1 import standins

    stood_in = standins.install_missing()  # before EasyR1 is imported: vLLM (and torchvision) are not here
    config = build_config(recipe, root, overrides, multi_turn)
    check_batches(config)
    data_config = config.data
    columns = [data_config.prompt_key, data_config.image_key, data_config.answer_key]
    train_path = Path(data_config.train_files)
    rows = read_rows(train_path, columns + (["id"] if replay is not None else []))
    if len(rows) < data_config.rollout_batch_size:
        raise UserError(f"{train_path} has {len(rows)} rows, fewer than one batch (data.rollout_batch_size)")
    if multi_turn:
        stage2 = is_stage2(config.worker.reward.reward_function_name)
        check_lfpc_rows(train_path, rows, data_config.prompt_key, data_config.image_key, stage2)
    if replay is not None:
        from locus_agent.backends.replay import ReplayBackend

        ReplayBackend(replay).check_ids([str(row["id"]) for row in rows])
    metrics_path = prepare_output(args.out)
    if stood_in:
        print(f"easyr1-step: import stand-ins for {', '.join(stood_in)} (not installed here; never called)")
    Step(config, multi_turn, replay, root, args).run(metrics_path)
    return 0


class Step:
    """Everything one process needs to run EasyR1's GRPO step: data, models, rollout, reward, actor."""

    def __init__(self, config: Any, multi_turn: bool, replay: Path | None, root: Path, args: argparse.Namespace):
        self.config, self.multi_turn, self.replay, self.root, self.args = config, multi_turn, replay, root, args

    def run(self, metrics_path: Path) -> None:
        import torch
        import torch.distributed as dist

        started_group = not dist.is_initialized()
        with tempfile.TemporaryDirectory() as scratch:
            if started_group:  # DataParallelPPOActor all-reduces the token count: a one-process group serves it
                dist.init_process_group("gloo", init_method=f"file://{scratch}/gloo", rank=0, world_size=1)
            try:
                torch.manual_seed(self.config.data.seed)
                self.load()
                with metrics_path.open("w", encoding="utf-8") as out:
                    steps = tqdm(range(1, self.args.steps + 1), desc="easyr1-step", unit="step")
                    for step in steps:
                        metrics = self.step(step)
                        out.write(json.dumps(metrics) + "\n")
                        out.flush()
                        steps.write(
                            f"step {step}/{self.args.steps}: reward {metrics['reward_mean']:.3f}, tool calls "
                            f"{metrics['tool_calls_mean']:.2f}, response tokens {metrics['response_tokens']:.0f} "
                            f"({metrics['masked_tool_tokens']:.0f} tool), loss {metrics['policy_loss']:.4f}, "
                            f"{metrics['seconds']:.1f} s"
                        )
            finally:
                if started_group:
                    dist.destroy_process_group()
        print(f"wrote {metrics_path}")

    # ------------------------------------------------------------------------------------------------------------

    def load(self) -> None:
        import copy

        import torch
        from torchdata.stateful_dataloader import StatefulDataLoader
        from transformers import AutoModelForImageTextToText
        from verl.trainer.core_algos import get_kl_controller
        from verl.utils.dataset import collate_fn
        from verl.utils.torch_functional import get_constant_schedule_with_warmup, get_cosine_schedule_with_warmup
        from verl.workers.actor.dp_actor import DataParallelPPOActor
        from verl.workers.reward import AutoRewardManager

        from locus_agent.processor import load_processor

        config = self.config
        data, actor_config = config.data, config.worker.actor
        model_path = actor_config.model.model_path
        self.processor = load_processor(model_path)
        if self.multi_turn:
            from locus_train.easyr1.main import system_prompted

            system_prompted(self.processor, config, self.root)
        self.tokenizer = self.processor.tokenizer
        dataset = rlhf_dataset(data, self.processor)
        if len(dataset) < data.rollout_batch_size:
            raise UserError(
                f"{len(dataset)} rows fit data.max_prompt_length {data.max_prompt_length}, fewer than one batch"
            )
        sampler = None
        if data.shuffle:
            generator = torch.Generator()
            generator.manual_seed(data.seed)
            sampler = torch.utils.data.RandomSampler(dataset, generator=generator)
        # EasyR1's train loader, in this process (its 8 workers would only contend for a laptop's cores)
        self.loader = StatefulDataLoader(
            dataset, batch_size=data.rollout_batch_size, sampler=sampler, collate_fn=collate_fn, drop_last=True
        )
        self.batches = iter(self.loader)
        self.dataset = dataset

        self.model = AutoModelForImageTextToText.from_pretrained(model_path, dtype=torch.float32)
        if actor_config.model.freeze_vision_tower:
            self.model.model.visual.requires_grad_(False)
        self.generation_config = self.model.generation_config
        actor_config.global_batch_size_per_device = actor_config.global_batch_size * config.worker.rollout.n
        optim = actor_config.optim
        optimizer = torch.optim.AdamW(
            [p for p in self.model.parameters() if p.requires_grad],
            lr=optim.lr,
            betas=optim.betas,
            weight_decay=optim.weight_decay,
        )
        warmup = optim.lr_warmup_steps
        warmup = int(optim.lr_warmup_ratio * self.args.steps) if warmup is None else warmup
        if optim.lr_scheduler_type == "cosine":
            self.scheduler = get_cosine_schedule_with_warmup(
                optimizer, warmup, self.args.steps, min_lr_ratio=optim.min_lr_ratio, num_cycles=0.5
            )
        else:
            self.scheduler = get_constant_schedule_with_warmup(optimizer, warmup)
        self.actor = DataParallelPPOActor(actor_config, self.model, optimizer)
        self.use_reference = not config.algorithm.disable_kl
        if self.use_reference:
            reference = copy.deepcopy(self.model).requires_grad_(False)
            self.reference = DataParallelPPOActor(config.worker.ref, reference)
        self.kl_controller = get_kl_controller(config.algorithm)
        if self.multi_turn:
            from locus_train.easyr1.reward import MultiTurnRewardManager

            self.reward = MultiTurnRewardManager(config.worker.reward, self.tokenizer)
        else:
            self.reward = AutoRewardManager(config.worker.reward, self.tokenizer)
        self.worker = self._worker()
        self.rollout = self._rollout()

    def eos_token_ids(self) -> set[int]:
        eos = self.generation_config.eos_token_id
        eos = self.tokenizer.eos_token_id if eos is None else eos
        return set(eos if isinstance(eos, (list, tuple)) else [eos])

    def _engine(self) -> Any:
        from locus_train.easyr1.engine import HFGenerateEngine, ReplayEngine

        limit = self.config.worker.rollout.limit_images or None
        if self.replay is None:
            return HFGenerateEngine(self.model, self.processor, self.eos_token_ids(), limit_images=limit)
        from locus_agent.backends.replay import ReplayBackend

        keys: dict[tuple[int, ...], str] = {}
        for index in range(len(self.dataset)):
            row = self.dataset.dataset[index]
            prompt = tuple(self.dataset[index]["raw_prompt_ids"])
            if keys.setdefault(prompt, str(row["id"])) != str(row["id"]):
                raise UserError(
                    f"questions {keys[prompt]!r} and {row['id']!r} have the same prompt, so replayed turns cannot "
                    "tell them apart; give them one id"
                )
        replay = ReplayBackend(self.replay, self.tokenizer)
        return ReplayEngine(replay, keys, self.tokenizer.eos_token_id, limit_images=limit)

    def _rollout(self) -> Any:
        rollout_config = self.config.worker.rollout
        engine = self._engine()
        if self.multi_turn:
            from locus_train.easyr1.main import coord_frame_of
            from locus_train.easyr1.rollout import MultiTurnRollout

            return MultiTurnRollout.with_engine(
                engine, rollout_config, self.processor, rollout_config.lfpc, coord_frame_of(self.config)
            )
        from verl.workers.rollout.vllm_rollout_spmd import vLLMRollout

        from locus_train.easyr1.engine import CPUSamplingParams
        from locus_train.easyr1.rollout import vision_logit_bias

        # EasyR1's own rollout, built without its constructor (which starts vLLM), around the CPU engine
        rollout = vLLMRollout.__new__(vLLMRollout)
        rollout.rank, rollout.config, rollout.inference_engine = 0, rollout_config, engine
        rollout.pad_token_id = self.tokenizer.pad_token_id
        rollout.return_video_metadata, rollout.use_tqdm, rollout.lora_kwargs = False, False, {}
        rollout.sampling_params = CPUSamplingParams(
            n=rollout_config.n,
            temperature=rollout_config.temperature,
            top_p=rollout_config.top_p,
            top_k=rollout_config.top_k,
            seed=rollout_config.seed,
            max_tokens=rollout_config.response_length,
            logit_bias=vision_logit_bias(self.processor),
        )
        return rollout

    def _worker(self) -> Any:
        """The FSDP worker as far as its multi-modal inputs go (its constructor needs CUDA and NCCL)."""
        from verl.workers.fsdp_workers import FSDPWorker

        from locus_train.easyr1.worker import MultiTurnFSDPWorker

        worker_class = MultiTurnFSDPWorker if self.multi_turn else FSDPWorker
        worker = worker_class.__new__(worker_class)
        worker._cache, worker.processor = {}, self.processor
        return worker

    # ------------------------------------------------------------------------------------------------------------

    def next_batch(self) -> dict[str, Any]:
        try:
            return next(self.batches)
        except StopIteration:
            self.batches = iter(self.loader)
            return next(self.batches)

    def make_batch(self) -> Any:
        """``RayPPOTrainer._make_batch_data`` for one process (no online filtering)."""
        import uuid

        import numpy as np
        from verl.protocol import DataProto

        config = self.config
        meta_info = {
            "min_pixels": config.data.min_pixels,
            "max_pixels": config.data.max_pixels,
            "video_fps": config.data.video_fps,
        }
        batch = DataProto.from_single_dict(self.next_batch(), meta_info=meta_info)
        batch.non_tensor_batch["uid"] = np.array([str(uuid.uuid4()) for _ in range(len(batch))], dtype=object)
        prompt_length = batch.batch["attention_mask"].sum(-1)
        if int(prompt_length.max()) >= config.data.max_prompt_length and not config.data.filter_overlong_prompts:
            raise UserError(
                f"a prompt fills data.max_prompt_length {config.data.max_prompt_length} and may be cut (its image "
                "tokens with it); raise data.max_prompt_length or set data.filter_overlong_prompts=true"
            )
        generation = batch.pop(
            batch_keys=["input_ids", "attention_mask", "position_ids"],
            non_tensor_batch_keys=["raw_prompt_ids", "multi_modal_data"],
            meta_info_keys=["min_pixels", "max_pixels", "video_fps"],
        )
        # what FSDPWorker.generate_sequences adds
        eos, pad = self.generation_config.eos_token_id, self.generation_config.pad_token_id
        generation.meta_info.update(
            eos_token_id=self.tokenizer.eos_token_id if eos is None else eos,
            pad_token_id=self.tokenizer.pad_token_id if pad is None else pad,
        )
        output = self.rollout.generate_sequences(generation)
        batch = batch.repeat(repeat_times=config.worker.rollout.n, interleave=True)
        return batch.union(output)

    def step(self, step: int) -> dict[str, Any]:
        import numpy as np
        import torch
        from verl.trainer.metrics import reduce_metrics
        from verl.trainer.ray_trainer import apply_kl_penalty, compute_advantage

        config = self.config
        started = time.perf_counter()
        self.model.eval()
        batch = self.make_batch()
        batch.meta_info["global_token_num"] = torch.sum(batch.batch["attention_mask"], dim=-1).tolist()
        scores, reward_metrics = self.reward.compute_reward(batch)
        self.worker._process_multi_modal_inputs(batch)
        batch.meta_info["temperature"] = config.worker.rollout.temperature
        batch.batch["old_log_probs"] = self.actor.compute_log_prob(batch)
        if self.use_reference:
            batch.batch["ref_log_probs"] = self.reference.compute_log_prob(batch)
        batch.batch["token_level_scores"] = scores
        if not config.algorithm.use_kl_loss and self.use_reference:
            batch, _ = apply_kl_penalty(batch, self.kl_controller, config.algorithm.kl_penalty)
        else:
            batch.batch["token_level_rewards"] = scores
        batch = compute_advantage(
            batch, adv_estimator=config.algorithm.adv_estimator, gamma=config.algorithm.gamma, lam=config.algorithm.lam
        )
        if step == 1 and self.args.dump_batch is not None:
            dump_batch(batch, self.args.dump_batch, self.tokenizer, scores)
        before = {name: p.detach().clone() for name, p in self.model.named_parameters()}
        lr = self.scheduler.get_last_lr()[0]
        actor_metrics = self.actor.update_policy(batch)
        self.scheduler.step()
        delta = max(float((p.detach() - before[name]).abs().max()) for name, p in self.model.named_parameters())

        response_length = batch.batch["responses"].size(-1)
        attention = batch.batch["attention_mask"][:, -response_length:].float()
        policy = batch.batch["response_mask"].float()
        reward = reduce_metrics(reward_metrics)
        calls = reward_metrics.get("rollout_tool_calls")
        metrics: dict[str, Any] = {
            "step": step,
            "seconds": time.perf_counter() - started,
            "reward_mean": float(np.mean(reward_metrics["overall"])),
            "tool_calls_mean": float(np.mean(calls)) if calls is not None else 0.0,
            "response_tokens": float(attention.sum(-1).mean()),
            "masked_tool_tokens": float((attention - policy).sum(-1).mean()),
            "policy_loss": float(np.mean(actor_metrics["actor/pg_loss"])),
            "grad_norm": float(np.mean(actor_metrics["actor/grad_norm"])),
            "max_abs_param_delta": delta,
            "lr": lr,
        }
        metrics.update({f"reward/{key}": float(value) for key, value in reward.items()})
        metrics.update({key: float(np.mean(value)) for key, value in actor_metrics.items() if key != "actor/pg_loss"})
        return {key: (None if isinstance(v, float) and not math.isfinite(v) else v) for key, v in metrics.items()}
