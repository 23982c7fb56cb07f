"""``locus-train trl``: every check that needs no model, then TRL's ``GRPOTrainer`` with the LOCUS reward.

Checked before any weight loads, each failing with one line that names the fix: config keys and values
(:mod:`locus_train.trl.config`), batch sizes (``num_generations`` must divide the generation batch), the dataset
files and their image count (a one-image text-cue dataset under a visual-cue config), the format prompt, the model
path, a processor that has the image token the model expects, a reward frame that matches the processor's patch grid,
and a ``think_prefilled`` that matches the chat template.

torch, transformers and trl are imported inside the functions that need them, so ``--help`` and ``--check`` stay
fast and the module imports anywhere.
"""

import argparse
import importlib.util
import json
import os
import sys
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from locus_agent.processor import check_checkpoint_frame, set_pixel_limits, vision_token_ids
from locus_data.config import SPLITS, split_path
from locus_data.errors import UserError
from locus_data.outputs import check_output
from locus_train.prompting import chat_prompt, load_format_prompt, think_prefilled
from locus_train.trl.config import TrainConfig, load_config, to_yaml
from locus_train.trl.data import check_image_headers, count_images, load_split
from locus_train.trl.rewards import make_reward_func


CONFIG_NAME = "locus_trl_config.yaml"
"""the resolved config, written to grpo.output_dir so a run records what it trained with"""


@dataclass
class Prepared:
    """What the checks found: everything a run needs except the model weights."""

    cfg: TrainConfig
    """the loaded config"""
    grpo_args: Any
    """the ``trl.GRPOConfig``"""
    processor: Any
    """the checkpoint's Qwen-VL processor (image-only where torchvision is missing)"""
    model_path: str
    """what the trainer loads the weights from (a local directory or the hub id)"""
    train_file: Path
    """train parquet"""
    val_file: Path | None
    """validation parquet, or None when the run does not evaluate"""
    format_prompt: str | None
    """jinja source of the format prompt"""


def _world_size() -> int:
    # accelerate launch / torchrun set WORLD_SIZE; a plain run is one process
    return int(os.environ.get("WORLD_SIZE", "1"))


def check_batch(grpo: dict[str, Any], world_size: int) -> None:
    """Raise UserError unless ``num_generations`` divides the generation batch (TRL's defaults fill missing keys).

    >>> check_batch({"num_generations": 4, "per_device_train_batch_size": 8}, 1)
    >>> check_batch({"num_generations": 3, "per_device_train_batch_size": 4}, 1)
    Traceback (most recent call last):
    ...
    locus_data.errors.UserError: grpo.num_generations=3 does not divide the generation batch of 4 completions \
(per_device_train_batch_size 4 x 1 process(es) x steps_per_generation 1); set grpo.per_device_train_batch_size to a \
multiple of 3, or grpo.num_generations to a divisor of 4
    """
    from trl import GRPOConfig  # trl imports torch: only when a run is checked

    defaults = {f: GRPOConfig.__dataclass_fields__[f].default for f in GRPOConfig.__dataclass_fields__}

    def get(key: str) -> Any:
        value = grpo.get(key, defaults[key])
        return defaults[key] if value is None else value

    generations = get("num_generations")
    per_device = get("per_device_train_batch_size")
    steps = grpo.get("steps_per_generation") or get("gradient_accumulation_steps")
    batch = grpo.get("generation_batch_size") or per_device * world_size * steps
    if generations < 2:
        raise UserError(
            f"grpo.num_generations must be >= 2 (GRPO compares completions of a prompt), got {generations}"
        )
    if batch % generations:
        how = f"per_device_train_batch_size {per_device} x {world_size} process(es) x steps_per_generation {steps}"
        if grpo.get("generation_batch_size"):
            how = "grpo.generation_batch_size"
        raise UserError(
            f"grpo.num_generations={generations} does not divide the generation batch of {batch} completions ({how}); "
            f"set grpo.per_device_train_batch_size to a multiple of {generations}, or grpo.num_generations to a "
            f"divisor of {batch}"
        )
    if get("eval_strategy") != "no":
        eval_generations = grpo.get("num_generations_eval") or generations
        eval_batch = get("per_device_eval_batch_size") * world_size
        if eval_batch % eval_generations:
            raise UserError(
                f"grpo.per_device_eval_batch_size x {world_size} process(es) = {eval_batch} is not a multiple of the "
                f"{eval_generations} generations per validation prompt; set grpo.per_device_eval_batch_size to a "
                f"multiple of {eval_generations} (or grpo.num_generations_eval)"
            )


def _unyaml(grpo: dict[str, Any]) -> dict[str, Any]:
    """YAML reads a bare ``no`` as false: give string fields (``eval_strategy=no``, ``save_strategy``) the word back.

    >>> _unyaml({"eval_strategy": False, "bf16": False})
    {'eval_strategy': 'no', 'bf16': False}
    """
    from trl import GRPOConfig  # trl imports torch: only when a run is checked

    fields = GRPOConfig.__dataclass_fields__
    for key, value in grpo.items():
        default = fields[key].default if key in fields else None
        if value is False and isinstance(default, (str, Enum)):
            grpo[key] = "no"
    return grpo


def grpo_config(cfg: TrainConfig):
    """``trl.GRPOConfig`` from the ``grpo`` section plus the model section's load options; UserError on bad values."""
    from trl import GRPOConfig  # trl imports torch: only when a run is checked

    grpo = _unyaml(dict(cfg.grpo))
    check_batch(grpo, _world_size())
    init_kwargs = dict(grpo.pop("model_init_kwargs", None) or {})
    for key in ("dtype", "attn_implementation"):
        if key in init_kwargs:
            raise UserError(f"set model.{key}, not grpo.model_init_kwargs.{key}")
    init_kwargs["dtype"] = cfg.model.dtype
    if cfg.model.attn_implementation:
        init_kwargs["attn_implementation"] = cfg.model.attn_implementation
    try:
        return GRPOConfig(**grpo, model_init_kwargs=init_kwargs)
    except (ValueError, TypeError) as err:
        message = str(err).splitlines()[0]
        if "bf16" in message:
            message += " Set grpo.bf16=false (and grpo.use_cpu=true on a CPU), or start from a TRL recipe (--config)"
        raise UserError(f"grpo: {message}") from None


def _split_files(cfg: TrainConfig, evaluates: bool) -> tuple[Path, Path | None]:
    data = cfg.data
    root = Path(data.dir) if data.dir else None
    if root is not None and not root.is_dir():
        raise UserError(f"data.dir {root} is not a directory; build one with `locus-data build ... --out DIR`")
    train_split, val_split = SPLITS
    train = Path(data.train_files) if data.train_files else split_path(root, train_split) if root else None
    if train is None:
        raise UserError("no training data: set data.dir=DIR (a `locus-data build` output) or data.train_files=FILE")
    if not train.is_file():
        raise UserError(f"train split not found: {train}; set data.dir or data.train_files to a built dataset")
    val = Path(data.val_files) if data.val_files else split_path(root, val_split) if root else None
    if val is not None and not val.is_file():
        if data.val_files:
            raise UserError(f"validation split not found: {val}; fix data.val_files")
        val = None
    if evaluates and val is None:
        raise UserError(
            'grpo.eval_strategy is set but there is no validation split; set data.val_files or grpo.eval_strategy="no"'
        )
    return train, val if evaluates else None


def check_images(path: Path, num_images: int) -> None:
    """Raise UserError when a split's rows do not hold ``num_images`` images and as many ``<image>`` markers."""
    markers, images = count_images(path)
    if images == num_images and markers == num_images:
        return
    if num_images == 2 and images == 1:
        raise UserError(
            f"{path} holds one image per row (a text-cue dataset from `locus-data export-text-cue`?), but this config "
            "is for visual cue search (data.num_images=2: the full image, then the cue); point data.dir at a "
            "`locus-data build` output, or train the text-cue baseline with data.num_images=1 and "
            "data.format_prompt=./locus_train/prompts/text_cue_qwen2_5_vl.jinja"
        )
    raise UserError(
        f"{path} rows hold {images} image(s) and {markers} <image> marker(s), but data.num_images={num_images}; "
        "set data.num_images to match the dataset (run `locus-data validate` on it)"
    )


def resolve_model(path: str | None) -> tuple[str, Path]:
    """``(what the trainer loads, local directory holding the processor files)``; UserError when neither exists.

    The rule is :func:`locus_agent.processor.resolve_model`'s: a directory, or a hub id whose processor files (not
    its weights: the trainer fetches those once every check passed) are cached or can be fetched.
    """
    if not path:
        raise UserError("model.path is not set; pass model.path=DIR (a checkpoint directory) or a hub id")
    from locus_agent.processor import resolve_model as local_dir  # the one home of the path-or-hub-id rule

    try:
        return path, local_dir(path, download=True)
    except UserError as err:
        raise UserError(f"model.path: {err}") from None


def check_processor(processor: Any, model_dir: Path, cfg: TrainConfig) -> None:
    """Raise UserError when the processor cannot feed images to this model, or its template another think state.

    The reward's frame against the checkpoint's family is :func:`locus_agent.processor.check_checkpoint_frame`'s,
    run by :func:`check_run` before the processor loads.
    """
    tokenizer = processor.tokenizer
    token = getattr(processor, "image_token", None)
    token_id = tokenizer.convert_tokens_to_ids(token) if token else None
    if token_id is None or token_id == tokenizer.unk_token_id or token_id >= len(tokenizer):
        raise UserError(
            f"the tokenizer in {model_dir} has no image token {token!r}, so images could never reach the model; use "
            "the tokenizer files released with the Qwen-VL checkpoint"
        )
    config_file = model_dir / "config.json"
    expected = (
        json.loads(config_file.read_text(encoding="utf-8")).get("image_token_id") if config_file.is_file() else None
    )
    if expected is not None and expected != token_id:
        raise UserError(
            f"the model expects image token id {expected} but the tokenizer in {model_dir} maps {token!r} to "
            f"{token_id}; use the tokenizer files released with this checkpoint"
        )
    opened = think_prefilled(chat_prompt(processor, "x"))
    if opened != cfg.reward.think_prefilled:
        says = "opens <think> itself" if opened else "does not open <think>"
        raise UserError(
            f"the chat template in {model_dir} {says}, so every completion would fail the format check; set "
            f"reward.think_prefilled={str(opened).lower()}"
        )


def weight_names(model_dir: Path) -> set[str] | None:
    """Tensor names in the checkpoint's safetensors headers (read without torch), or None when it has no weights."""
    names: set[str] = set()
    files = sorted(model_dir.glob("*.safetensors"))
    for file in files:
        try:
            with file.open("rb") as handle:
                size = int.from_bytes(handle.read(8), "little")
                names.update(json.loads(handle.read(size)))
        except (OSError, ValueError):
            return None
    return names if files else None


def check_lora_targets(cfg: TrainConfig, model_dir: Path) -> None:
    """Raise UserError for a LoRA target module the checkpoint does not have (peft fails only after the load)."""
    names = weight_names(model_dir) if cfg.model.use_peft else None
    if not names:
        return
    modules = {part for name in names for part in name.split(".")}
    missing = [m for m in cfg.model.lora_target_modules if m not in modules]
    if missing:
        raise UserError(
            f"model.lora_target_modules {missing} match no module of {model_dir}; Qwen-VL language-model modules "
            "are q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj"
        )


def check_run(cfg: TrainConfig) -> Prepared:
    """Every check that needs no model weights; returns what :func:`build_trainer` needs."""
    grpo_args = grpo_config(cfg)
    train_file, val_file = _split_files(cfg, evaluates=grpo_args.eval_strategy != "no")
    for path, limit in ((train_file, cfg.data.max_train_samples), (val_file, cfg.data.max_val_samples)):
        if path is not None:
            check_images(path, cfg.data.num_images)
            check_image_headers(path, limit)
    try:
        format_prompt = load_format_prompt(cfg.data.format_prompt)
    except FileNotFoundError as err:
        raise UserError(f"{err}; fix data.format_prompt") from None
    model_path, model_dir = resolve_model(cfg.model.path)
    if grpo_args.output_dir:
        # checkpoints and the final model land there: never over the policy checkpoint or the data it reads
        check_output(grpo_args.output_dir, [model_dir, train_file, val_file], what="grpo.output_dir", expect="dir")
    # the one frame-vs-family check (no override here: a run trained in another frame is never what was meant)
    check_checkpoint_frame(model_dir, cfg.reward.coord_frame, "reward.coord_frame", override=None)
    from locus_agent.processor import load_processor  # imports transformers

    try:
        processor = load_processor(model_dir)
    except (ValueError, OSError) as err:
        raise UserError(f"{err}; point model.path at a Qwen2.5-VL, Qwen3-VL or MiMo-VL checkpoint") from None
    if grpo_args.use_vllm and (cfg.data.min_pixels is not None or cfg.data.max_pixels is not None):
        # TRL starts vLLM from the checkpoint alone, so vLLM would resize with the checkpoint's limits while the
        # log-probs and the reward used these: the frame would silently differ between rollout and update
        raise UserError(
            "data.min_pixels/data.max_pixels cannot be applied to TRL's vLLM rollouts; set both to null (the "
            "checkpoint's own limits) or write them into the checkpoint's preprocessor_config.json, or use_vllm=false"
        )
    if grpo_args.use_vllm and importlib.util.find_spec("vllm") is None:
        raise UserError(
            "grpo.use_vllm=true needs vLLM (pip install -e '.[vllm]' on a CUDA machine); or use_vllm=false"
        )
    check_lora_targets(cfg, model_dir)
    low, high = set_pixel_limits(processor, cfg.data.min_pixels, cfg.data.max_pixels)
    if low > high:
        raise UserError(f"data.min_pixels {low} is above data.max_pixels {high}; fix one of them")
    check_processor(processor, model_dir, cfg)
    return Prepared(cfg, grpo_args, processor, model_path, train_file, val_file, format_prompt)


def build_trainer(prepared: Prepared):
    """The ``trl.GRPOTrainer`` for a checked run (this loads the model)."""
    from trl import GRPOTrainer  # heavy: only once the checks passed

    cfg = prepared.cfg
    data = cfg.data
    train = load_split(prepared.train_file, prepared.format_prompt, data.max_train_samples, data.cache_dir)
    val = None
    if prepared.val_file is not None:
        val = load_split(prepared.val_file, prepared.format_prompt, data.max_val_samples, data.cache_dir)
    peft_config = None
    if cfg.model.use_peft:
        from peft import LoraConfig  # only for LoRA runs

        peft_config = LoraConfig(
            r=cfg.model.lora_r,
            lora_alpha=cfg.model.lora_alpha,
            lora_dropout=cfg.model.lora_dropout,
            target_modules=list(cfg.model.lora_target_modules),
            task_type="CAUSAL_LM",
        )
    args = prepared.grpo_args
    # TRL suppresses only the image token; a sampled vision start/end or video token breaks the next forward pass
    # (Qwen-VL's get_rope_index reads the token after each vision start: IndexError at a completion's end)
    kwargs = dict(args.generation_kwargs or {})
    vision = vision_token_ids(prepared.processor)
    if args.use_vllm:
        # vLLM's SamplingParams take a logit bias, as EasyR1 gives its rollouts (untested here: no vLLM on CPU)
        kwargs["logit_bias"] = {**(kwargs.get("logit_bias") or {}), **dict.fromkeys(sorted(vision), -100.0)}
    else:
        kwargs["suppress_tokens"] = sorted(set(kwargs.get("suppress_tokens") or []) | vision)
    args.generation_kwargs = kwargs
    return GRPOTrainer(
        model=prepared.model_path,
        reward_funcs=[make_reward_func(asdict(cfg.reward), prepared.processor)],
        args=args,
        train_dataset=train,
        eval_dataset=val,
        processing_class=prepared.processor,
        peft_config=peft_config,
    )


def run(cfg: TrainConfig, check_only: bool = False):
    """Check, train, save the model (or LoRA adapter) and the processor to ``grpo.output_dir``; returns the trainer."""
    prepared = check_run(cfg)
    if check_only:
        print(f"checks passed: {prepared.train_file} -> {prepared.grpo_args.output_dir} (model {prepared.model_path})")
        return None
    trainer = build_trainer(prepared)
    output_dir = Path(prepared.grpo_args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / CONFIG_NAME).write_text(to_yaml(cfg), encoding="utf-8")
    trainer.train(resume_from_checkpoint=prepared.grpo_args.resume_from_checkpoint)
    trainer.save_model(str(output_dir))
    # the log history `locus-eval plot-training` reads, also for runs that save no intermediate checkpoint
    if trainer.is_world_process_zero():
        trainer.state.save_to_json(str(output_dir / "trainer_state.json"))
    return trainer


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="locus-train trl",
        description="GRPO on LOCUS cue search with TRL's GRPOTrainer (one GPU with LoRA, one node, or a CPU).",
    )
    parser.add_argument(
        "--config", type=Path, default=None, help="TRL recipe, e.g. config/trl/locus_qwen2_5_vl_3b_lora.yaml"
    )
    parser.add_argument("--check", action="store_true", help="run every check that needs no model weights, then stop")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="e.g. model.path=DIR grpo.max_steps=3")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        run(load_config(args.config, args.overrides), check_only=args.check)
    except UserError as err:
        print(f"locus-train trl: error: {err}", file=sys.stderr)
        return 2
    return 0
