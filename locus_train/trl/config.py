"""The TRL recipe: four sections, loaded as OmegaConf ``structured(TrainConfig)`` <- YAML <- ``key=value`` overrides.

``model``, ``data`` and ``reward`` are dataclasses below; ``grpo`` is passed through to ``trl.GRPOConfig`` under the
names TRL gives its fields, and checked against them. Unknown keys anywhere fail at once with a "did you mean"
(:func:`locus_data.yaml_config.load_structured`, the loader of every LOCUS config), so ``grpo.max_step=3`` cannot
silently train for TRL's default length.
Relative paths in a YAML file start at its project root (:func:`locus_train.recipe.recipe_root`, as in the EasyR1
recipes); relative paths given as overrides start at the working directory.

torch-free: trl is imported only to read ``GRPOConfig``'s field names (:func:`grpo_field_names`).

>>> cfg = load_config(None, ["model.path=/ckpt", "reward.coord_frame=qwen3_vl", "grpo.max_steps=3"])
>>> cfg.reward.coord_frame, cfg.grpo
('qwen3_vl', {'max_steps': 3})
>>> load_config(None, ["model.pth=/ckpt"])
Traceback (most recent call last):
...
locus_data.errors.UserError: unknown TRL config key 'model.pth'; did you mean 'model.path'?
"""

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from locus_data.errors import UserError
from locus_data.yaml_config import did_you_mean, load_structured, options_section, read_yaml
from locus_reward.options import CueSearchOptions, PixelLimits
from locus_train.recipe import DEFAULT_FORMAT_PROMPTS, EASYR1_SECTIONS, recipe_root


DTYPES = ("auto", "bfloat16", "float16", "float32")
"""the weight dtypes ``model.dtype`` may name"""
ATTENTION = ("eager", "sdpa", "flash_attention_2", "flash_attention_3", "flex_attention")
"""the attention kernels transformers 4.57 loads by name"""


@dataclass
class ModelConfig:
    """The policy: which checkpoint, in which dtype and attention kernel, trained fully or through LoRA."""

    path: str | None = None
    """local checkpoint directory or hub id of a Qwen2.5-VL, Qwen3-VL or MiMo-VL model (with its processor)"""
    dtype: str = "auto"
    """weight dtype: auto (the checkpoint's), bfloat16, float16 or float32"""
    attn_implementation: str | None = None
    """eager, sdpa or flash_attention_2 (null: transformers' default, sdpa where available)"""
    use_peft: bool = False
    """train a LoRA adapter (peft) instead of every weight"""
    lora_r: int = 16
    """LoRA rank"""
    lora_alpha: int = 32
    """LoRA scale numerator (the update is scaled by lora_alpha / lora_r)"""
    lora_dropout: float = 0.05
    """dropout on the LoRA input"""
    lora_target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    """modules LoRA wraps; these names exist only in the language model (the vision tower's attention is qkv/proj)"""

    def __post_init__(self) -> None:
        # what from_pretrained or peft would reject only after the model loaded, refused when the config loads
        if self.dtype not in DTYPES:
            raise UserError(f"model.dtype={self.dtype!r} is not one of {', '.join(DTYPES)}")
        if self.attn_implementation is not None and self.attn_implementation not in ATTENTION:
            raise UserError(
                f"model.attn_implementation={self.attn_implementation!r} is not one of {', '.join(ATTENTION)} "
                "(or null: transformers' default)"
            )
        if self.use_peft:
            if self.lora_r < 1:
                raise UserError(f"model.lora_r must be >= 1 (the LoRA rank), got {self.lora_r}")
            if self.lora_alpha <= 0:
                raise UserError(f"model.lora_alpha must be > 0, got {self.lora_alpha}")
            if not 0 <= self.lora_dropout < 1:
                raise UserError(f"model.lora_dropout must be in [0, 1), got {self.lora_dropout}")
            if not self.lora_target_modules:
                raise UserError(
                    "model.lora_target_modules is empty; name the modules LoRA wraps (e.g. [q_proj, v_proj])"
                )


@dataclass
class DataConfig:
    """The LOCUS dataset, the format prompt, and the pixel limits the processor resizes images to."""

    dir: str | None = None
    """a ``locus-data build`` output directory (DIR/train.parquet, DIR/val.parquet)"""
    train_files: str | None = None
    """train parquet file (default: DIR/train.parquet)"""
    val_files: str | None = None
    """validation parquet file (default: DIR/val.parquet when it exists; evaluated every grpo.eval_steps)"""
    num_images: int = 2
    """images per row: 2 for visual cue search (full image, then cue), 1 for the text-cue baseline"""
    format_prompt: str | None = None
    """jinja format prompt, rendered as EasyR1 renders it (null: the shipped cue-search prompt of the coord_frame)"""
    min_pixels: int | None = None
    """processor lower pixel limit (null: the checkpoint processor's own); no other resize runs under TRL"""
    max_pixels: int | None = None
    """processor upper pixel limit (null: the checkpoint processor's own)"""
    max_train_samples: int | None = None
    """use only the first N train rows (null: all)"""
    max_val_samples: int | None = None
    """use only the first N validation rows (null: all); each is generated num_generations_eval times per eval"""
    cache_dir: str | None = None
    """where datasets keeps its Arrow copy of the parquet files (null: HF_DATASETS_CACHE)"""

    def __post_init__(self) -> None:
        # 0 rows or 0 pixels would train on nothing (and exit 0); null is the way to say "all" / "the processor's"
        for name in ("max_train_samples", "max_val_samples", "min_pixels", "max_pixels"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise UserError(f"data.{name} must be >= 1 or null, got {value}")
        if self.min_pixels is not None and self.max_pixels is not None and self.min_pixels > self.max_pixels:
            raise UserError(f"data.min_pixels {self.min_pixels} is above data.max_pixels {self.max_pixels}")


RewardConfig = options_section(
    CueSearchOptions,
    exclude=PixelLimits,
    name="RewardConfig",
    module=__name__,
    doc="Options of :func:`locus_reward.cue_search.compute_score` (:class:`locus_reward.options.CueSearchOptions`, "
    "where each is declared and checked); the pixel limits come from the processor instead.",
)
"""the ``reward`` section: every reward option but the pixel limits, with the option's type and default"""


PROCESSOR_DEFAULTS = PixelLimits.processor_only(None, None)
"""no EasyR1 pre-resize, and the released checkpoint's processor limits"""


def reward_options(reward: RewardConfig, limits: PixelLimits = PROCESSOR_DEFAULTS) -> CueSearchOptions:
    """The reward's options: the ``reward`` section, scored in the frame of ``limits`` (under TRL the processor's
    ``smart_resize`` alone); UserError for a value compute_score would reject.

    >>> reward_options(load_config(None, ["reward.variant=lfpc"]).reward).variant
    'lfpc'
    """
    try:
        return CueSearchOptions.from_kwargs({**dataclasses.asdict(reward), **limits.pixel_kwargs})
    except ValueError as err:
        raise UserError(f"reward: {err}") from None


@dataclass
class TrainConfig:
    """A TRL GRPO run of LOCUS."""

    model: ModelConfig = field(default_factory=ModelConfig)
    """the policy checkpoint"""
    data: DataConfig = field(default_factory=DataConfig)
    """dataset and image limits"""
    reward: RewardConfig = field(default_factory=RewardConfig)
    """LOCUS reward options"""
    grpo: dict[str, Any] = field(default_factory=dict)
    """``trl.GRPOConfig`` fields under their TRL names (output_dir, learning_rate, num_generations, ...)"""


PATH_KEYS = ("model.path", "data.dir", "data.train_files", "data.val_files", "data.format_prompt", "data.cache_dir")
"""keys holding paths (a hub id in model.path is kept as written when no such file exists)"""


def grpo_field_names() -> list[str]:
    """The fields ``trl.GRPOConfig`` accepts as keyword arguments (of the installed trl)."""
    from trl import GRPOConfig  # trl imports torch: only when a config is checked

    return [f.name for f in dataclasses.fields(GRPOConfig) if f.init]


def check_grpo_keys(grpo: dict[str, Any], fields: list[str] | None = None) -> None:
    """Raise UserError for a ``grpo`` key that is not a GRPOConfig field, with the closest field name."""
    fields = grpo_field_names() if fields is None else fields
    for key in grpo:
        if key not in fields:
            hint = did_you_mean(key, fields).replace(" '", " 'grpo.") or " (see trl.GRPOConfig for the field names)"
            raise UserError(f"unknown key 'grpo.{key}': not a trl.GRPOConfig field{hint}")


GRPO_AT_LEAST = {
    "per_device_train_batch_size": 1,
    "per_device_eval_batch_size": 1,
    "gradient_accumulation_steps": 1,
    "max_completion_length": 1,
    "max_prompt_length": 1,
    "steps_per_generation": 1,
    "generation_batch_size": 1,
    "num_iterations": 1,
    "dataloader_num_workers": 0,
    "beta": 0,
    "warmup_ratio": 0,
    "warmup_steps": 0,
    "weight_decay": 0,
    "max_grad_norm": 0,
    "epsilon": 0,
}
"""``grpo`` fields and their smallest meaningful value (null keeps TRL's default where the field allows it)"""
GRPO_POSITIVE = (
    "learning_rate",
    "temperature",
    "num_train_epochs",
    "logging_steps",
    "eval_steps",
    "save_steps",
    "top_p",
)
"""``grpo`` fields that must be above 0 (a step count below 1 is TRL's ratio of the total steps)"""


def _types(annotation: Any) -> tuple[set[type], bool]:
    """The scalar types (bool, int, float, str) an annotation admits, and whether it admits None."""
    import typing

    args = typing.get_args(annotation) if typing.get_origin(annotation) is not None else (annotation,)
    scalars = {a for a in args if a in (bool, int, float, str)}
    optional = type(None) in args
    if any(a not in (bool, int, float, str, type(None)) for a in args):
        scalars.add(str)  # an enum or a class: leave it to GRPOConfig
    return scalars, optional


def check_grpo_values(grpo: dict[str, Any]) -> None:
    """Raise UserError for a ``grpo`` value of the wrong type or out of range, before anything loads.

    Types come from ``trl.GRPOConfig``'s annotations (``learning_rate=abc`` would otherwise fail deep in the
    optimizer once the model loaded); ranges are those that make a run train nothing or diverge at once.
    """
    from trl import GRPOConfig  # trl imports torch: only when a config is checked

    fields = {f.name: f for f in dataclasses.fields(GRPOConfig)}
    for key, value in grpo.items():
        if key not in fields or value is None:
            continue
        scalars, _ = _types(fields[key].type)
        if not scalars or str in scalars:
            continue
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if bool in scalars and not scalars - {bool}:
            ok = isinstance(value, bool)
            want = "true or false"
        elif float in scalars:
            ok, want = number, "a number"
        else:
            ok, want = number and float(value).is_integer(), "an integer"
        if not ok:
            raise UserError(f"grpo.{key} must be {want}, got {value!r}")
    for key, low in GRPO_AT_LEAST.items():
        if grpo.get(key) is not None and grpo[key] < low:
            raise UserError(f"grpo.{key} must be >= {low}, got {grpo[key]}")
    for key in GRPO_POSITIVE:
        if grpo.get(key) is not None and grpo[key] <= 0:
            raise UserError(f"grpo.{key} must be > 0, got {grpo[key]}")
    max_steps = grpo.get("max_steps", fields["max_steps"].default)
    if max_steps is not None and max_steps != -1 and max_steps < 1:
        raise UserError(
            f"grpo.max_steps must be >= 1, or -1 to train grpo.num_train_epochs epochs; got {max_steps} "
            "(TRL would train another length and exit 0)"
        )


def _resolve_paths(cfg: TrainConfig, base: Path | None, overridden: set[str]) -> None:
    for key in PATH_KEYS:
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        if not value:
            continue
        path = Path(value).expanduser()
        if path.is_absolute():
            resolved = path
        elif base is not None and key not in overridden:
            resolved = base / path
        else:
            resolved = Path.cwd() / path
        # a hub id such as Qwen/Qwen2.5-VL-3B-Instruct stays a hub id unless a directory of that name exists
        if key == "model.path" and not resolved.exists() and not value.startswith((".", "/", "~")):
            continue
        setattr(getattr(cfg, section), name, str(resolved))


def load_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """Defaults <- YAML file <- ``key=value`` overrides; raises UserError naming the problem and the fix.

    Checks what needs no model: key names (``grpo`` ones against the installed trl), value types and the reward
    options. :func:`locus_train.trl.train.check_run` checks files, data, processor and batch sizes.
    """
    if path is not None:
        sections = set(read_yaml(path, "TRL config"))
        if sections & EASYR1_SECTIONS:
            raise UserError(
                f"{path} is an EasyR1 recipe ({', '.join(sorted(sections & EASYR1_SECTIONS))} sections); run it with "
                "its launcher (examples/locus_*.sh), or give locus-train trl a TRL recipe (config/trl/*.yaml)"
            )
    cfg: TrainConfig = load_structured(TrainConfig, path, overrides, "TRL config")
    base = recipe_root(path) if path is not None else None
    overridden = {item.split("=", 1)[0] for item in overrides}
    cfg.grpo = dict(cfg.grpo)
    check_grpo_keys(cfg.grpo)
    check_grpo_values(cfg.grpo)
    reward_options(cfg.reward)  # checks every option before anything loads
    if cfg.data.num_images not in (1, 2):
        raise UserError(f"data.num_images must be 1 (text cue) or 2 (visual cue), got {cfg.data.num_images}")
    if cfg.data.format_prompt is None:
        default = DEFAULT_FORMAT_PROMPTS.get(cfg.reward.coord_frame)
        cfg.data.format_prompt = str(default) if default and cfg.data.num_images == 2 else None
    _resolve_paths(cfg, base, overridden)
    return cfg


def to_yaml(cfg: TrainConfig) -> str:
    """The resolved config as YAML (written next to the run's checkpoints)."""
    from omegaconf import OmegaConf  # as in load_config

    return OmegaConf.to_yaml(OmegaConf.structured(cfg))
