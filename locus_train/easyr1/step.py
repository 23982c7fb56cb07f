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

``--cpu`` applies the CPU preset (:data:`CPU_PRESET`, then :data:`CPU_PRESET_LFPC` for LFPC recipes): 2 prompts x 2
rollouts, short responses, low pixel caps; ``key=value`` overrides come after it and win. EasyR1's padded (not
padding-free) path is quadratic in sequence length on a CPU, so keep prompts and responses short.

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
import io
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from locus_data.config import split_path
from locus_data.errors import UserError, reports_user_errors
from locus_data.yaml_config import read_yaml
from locus_train.easyr1.config import LFPC_SECTION, is_stage2
from locus_train.recipe import RecipeError, recipe_root


CPU_PRESET = [
    "data.rollout_batch_size=2",
    "worker.actor.global_batch_size=2",
    "worker.rollout.n=2",
    "worker.actor.micro_batch_size_per_device_for_update=2",
    "worker.actor.micro_batch_size_per_device_for_experience=4",
    "data.max_response_length=64",
    "data.shuffle=false",
]
"""``--cpu``, every recipe: 2 prompts x 2 rollouts per step (GRPO needs 2), one update, short responses"""
CPU_PRESET_LFPC = [
    "data.min_pixels=784",
    "data.max_pixels=50176",
    "data.max_response_length=1024",
    "worker.rollout.limit_images=3",
    "lfpc.max_turns=3",
    "lfpc.max_tokens_per_turn=256",
]
"""``--cpu``, LFPC recipes also: views and crops capped at 50,176 px (64 Qwen2.5-VL tokens), 3 turns of at most 256
tokens, 1,024 response tokens in all (3 x 256 model tokens + 2 tool turns of at most 64 crop and ~60 text tokens)"""
FORCED = [
    "worker.actor.padding_free=false",
    "worker.actor.dynamic_batching=false",
    "worker.actor.use_torch_compile=false",
    "worker.rollout.tensor_parallel_size=1",
    "trainer.nnodes=1",
    "trainer.n_gpus_per_node=1",
]
"""always: padding-free needs flash-attn, dynamic batching CUDA tensors, compiling costs more than a step; one rank"""
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


def rlhf_dataset(data: Any, processor: Any, split: str = "train") -> Any:
    """EasyR1's ``RLHFDataset`` of ``split`` with the arguments ``verl.trainer.data_loader.create_dataloader`` passes
    (``data``: the config's data section), one filter process (more would only contend for a CPU's cores)."""
    from verl.utils.dataset import RLHFDataset  # heavy: EasyR1 (torch, transformers)

    return RLHFDataset(
        data_path=data.train_files if split == "train" else data.val_files,
        tokenizer=processor.tokenizer,
        processor=processor,
        prompt_key=data.prompt_key,
        answer_key=data.answer_key,
        image_key=data.image_key,
        video_key=data.video_key,
        image_dir=data.image_dir,
        video_fps=data.video_fps,
        max_prompt_length=data.max_prompt_length,
        truncation="right",
        format_prompt=data.format_prompt,
        min_pixels=data.min_pixels,
        max_pixels=data.max_pixels,
        filter_overlong_prompts=data.filter_overlong_prompts,
        filter_overlong_prompts_workers=1,
    )


# ----------------------------------------------------------------------------------------------------------------
# the settings and the data, checked before any model loads
# ----------------------------------------------------------------------------------------------------------------


def absolute(path: str | None, root: Path) -> str | None:
    """A recipe path made absolute against the project root (EasyR1 would resolve it against the working directory
    and silently drop a path that does not exist there)."""
    if path is None or Path(path).is_absolute():
        return path
    return str((root / path).resolve())


def path_overrides(raw: Any, root: Path, data: Path, model: str) -> list[str]:
    """Absolute paths for everything EasyR1 opens, the data files and the model."""
    overrides = [
        f"data.train_files={split_path(data, 'train')}",
        f"data.val_files={split_path(data, 'val')}",
        f"worker.actor.model.model_path={model}",
    ]
    data_section = raw.get("data") or {}
    for key in ("format_prompt", "override_chat_template"):
        if data_section.get(key):
            overrides.append(f"data.{key}={absolute(data_section[key], root)}")
    reward = (raw.get("worker") or {}).get("reward") or {}
    if reward.get("reward_function"):
        file, _, name = str(reward["reward_function"]).partition(":")
        overrides.append(f"worker.reward.reward_function={absolute(file, root)}" + (f":{name}" if name else ""))
    return overrides


def parse_rollout(value: str) -> Path | None:
    """None for ``hf``, the replay file for ``replay:FILE``."""
    if value == "hf":
        return None
    if value.startswith("replay:") and value[len("replay:") :]:
        path = Path(value[len("replay:") :]).expanduser()
        if not path.is_file():
            raise UserError(f"--rollout {value}: replay file {path} not found")
        return path
    raise UserError(f"--rollout must be hf or replay:FILE, got {value!r}")


def read_rows(path: Path, columns: list[str], optional: tuple[str, ...] = ("id",)) -> list[dict[str, Any]]:
    """The rows of a split file: ``columns`` (UserError when one is missing) and the ``optional`` ones it has."""
    import pyarrow.parquet as pq

    if not path.is_file():
        raise UserError(f"{path} not found; --data is a folder holding train.parquet (locus-data export-lfpc/build)")
    names = pq.read_schema(path).names
    missing = [column for column in columns if column not in names]
    if missing:
        raise UserError(f"{path} has no column {', '.join(missing)}")
    return pq.read_table(path, columns=columns + [c for c in optional if c in names]).to_pylist()


def check_lfpc_rows(path: Path, rows: list[dict[str, Any]], prompt_key: str, image_key: str, stage2: bool) -> None:
    """The LFPC row contract, per row: one ``<image>``, one view struct whose ``path`` is its original, the view no
    larger than the original, and (Stage II) nested boxes."""
    from PIL import Image

    from locus_reward.lfpc_ground_truth import loads

    for number, row in enumerate(rows):
        where = f"{path} row {number}" + (f" (id {row['id']})" if row.get("id") is not None else "")
        if str(row[prompt_key]).count("<image>") != 1:
            raise UserError(f"{where}: the problem must hold exactly one <image> marker (the view)")
        images = row[image_key] or []
        if len(images) != 1 or not isinstance(images[0], dict) or not images[0].get("bytes"):
            raise UserError(f"{where}: an LFPC row holds one image struct {{bytes: view, path: original}}")
        original = images[0].get("path")
        if not original or not Path(original).is_absolute() or not Path(original).is_file():
            raise UserError(f"{where}: the struct's path {original!r} is not the original image's absolute path")
        view = Image.open(io.BytesIO(images[0]["bytes"])).size
        size = Image.open(original).size
        if view[0] > size[0] or view[1] > size[1]:
            raise UserError(
                f"{where}: the view image {view[0]}x{view[1]} is larger than its original {size[0]}x{size[1]} "
                f"({original}); a view is the original downsampled"
            )
        if stage2:
            try:
                boxes = loads(row["answer"]).boxes
            except ValueError as err:
                raise UserError(f"{where}: {err}") from None
            if not boxes:
                raise UserError(
                    f"{where} has no boxes; a Stage II recipe (compute_score_stage2) trains grounding on nested GT "
                    "boxes: export the boxed manifest (locus-data export-lfpc --require-boxes)"
                )


def prepare_output(out: Path) -> Path:
    metrics = out / "metrics.jsonl"
    if metrics.exists():
        raise UserError(f"{metrics} exists; choose another --out or remove it (nothing is overwritten)")
    out.mkdir(parents=True, exist_ok=True)
    return metrics


def build_config(recipe: Path, root: Path, overrides: list[str], multi_turn: bool) -> Any:
    """EasyR1's config of the recipe (LFPC: our entry point's, the ``lfpc:`` section under worker.rollout.lfpc)."""
    if multi_turn:
        from locus_train.easyr1.main import build_config as build_lfpc

        return build_lfpc([f"config={recipe}", *overrides], root)
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException
    from verl.trainer.config import PPOConfig

    try:
        cli = OmegaConf.from_dotlist(overrides)
        config = OmegaConf.to_object(
            OmegaConf.merge(OmegaConf.structured(PPOConfig()), read_yaml(recipe, "recipe", RecipeError), cli)
        )
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None) or "?"
        raise UserError(f"EasyR1 rejects the config at `{key}`: {str(err).splitlines()[0]}") from None
    config.deep_post_init()
    return config


def check_batches(config: Any) -> None:
    """The batch rules EasyR1 checks at startup, for one process."""
    data, actor, rollout = config.data, config.worker.actor, config.worker.rollout
    if rollout.n < 2 and config.algorithm.adv_estimator in ("grpo", "rloo"):
        raise UserError(f"worker.rollout.n is {rollout.n}; GRPO compares rollouts of a prompt: set it to 2 or more")
    if data.rollout_batch_size % actor.global_batch_size:
        raise UserError(
            f"data.rollout_batch_size {data.rollout_batch_size} must be divisible by worker.actor.global_batch_size "
            f"{actor.global_batch_size}"
        )
    per_device = actor.global_batch_size * rollout.n
    if per_device % actor.micro_batch_size_per_device_for_update:
        raise UserError(
            f"worker.actor.global_batch_size x n = {per_device} must be divisible by "
            f"micro_batch_size_per_device_for_update {actor.micro_batch_size_per_device_for_update}"
        )
    if actor.model.lora.rank > 0:
        raise UserError("LoRA (worker.actor.model.lora.rank > 0) is not supported by easyr1-step; set it to 0")


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
    import os

    import torch
    from verl.utils.dataset import process_image

    (out / "images").mkdir(parents=True, exist_ok=True)
    tensors = {key: batch.batch[key].clone() for key in DUMP_TENSORS}
    inputs = batch.non_tensor_batch.get("multi_modal_inputs")
    grids = [row["image_grid_thw"] for row in inputs if "image_grid_thw" in row] if inputs is not None else []
    if grids:
        tensors["image_grid_thw"] = torch.cat(grids)
    temporary = out / "batch.pt.partial"
    torch.save(tensors, temporary)
    os.replace(temporary, out / "batch.pt")
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
    temporary = out / "rows.jsonl.partial"
    temporary.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), encoding="utf-8")
    os.replace(temporary, out / "rows.jsonl")
