"""The settings and the data of a ``locus-train easyr1-step`` run (:mod:`locus_train.easyr1.step`), checked before any
model loads: the CPU preset and forced keys, absolute paths, the EasyR1 config, the rows, the output folder."""

import io
from pathlib import Path
from typing import Any

from locus_data.config import SPLITS, split_path
from locus_data.errors import UserError
from locus_data.yaml_config import read_yaml
from locus_train.recipe import RecipeError


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


def rlhf_dataset(data: Any, processor: Any, split: str = SPLITS[0]) -> Any:
    """EasyR1's ``RLHFDataset`` of ``split`` with the arguments ``verl.trainer.data_loader.create_dataloader`` passes
    (``data``: the config's data section), one filter process (more would only contend for a CPU's cores)."""
    from verl.utils.dataset import RLHFDataset  # heavy: EasyR1 (torch, transformers)

    return RLHFDataset(
        data_path=data.train_files if split == SPLITS[0] else data.val_files,
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
