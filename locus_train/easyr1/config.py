"""The ``lfpc:`` section of an LFPC recipe: the crop-tool agent's settings, which EasyR1's config has no key for.

An LFPC recipe is an EasyR1 recipe plus one top-level section::

    lfpc:
      max_turns: 5                # assistant turns per trajectory (Table 12)
      max_tokens_per_turn: 2048   # tokens one assistant turn may write (Table 12)
      system_prompt: null         # null: the agent's own prompt for the reward's coord_frame

Our entry point (``python3 -m locus_train.easyr1.main``, and ``locus-train easyr1-step``) reads and removes it before
EasyR1 builds its config, then hands it to the rollout. Everything else the rollout needs is an EasyR1 key with one
home: the coordinate frame is ``worker.reward.reward_function_kwargs.coord_frame`` (the reward reads boxes in it),
the whole trajectory's budget is ``data.max_response_length`` (model and tool tokens), the most images one
trajectory may hold is ``worker.rollout.limit_images`` (the view plus ``limit_images - 1`` crops; calls beyond that
get an error turn instead of an image), and crops keep their resolution up to ``data.max_pixels`` (the crop cap).

:func:`lfpc_errors` states what a recipe must satisfy for these to agree; preflight and the entry points run it.
This module never imports EasyR1 (preflight runs where it is not installed).

>>> read_lfpc([{"max_turns": 3}]).max_turns
3
>>> read_lfpc([{"max_turn": 3}])
Traceback (most recent call last):
...
locus_data.errors.UserError: unknown lfpc key 'max_turn'; did you mean 'max_turns'?
"""

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from locus_agent.conversation import PROMPTS_DIR, with_tool_schema
from locus_agent.view import check_agent_frame
from locus_data.errors import UserError
from locus_data.yaml_config import did_you_mean
from locus_reward.frames import BACKBONES


LFPC_SECTION = "lfpc"
"""the recipe's top-level key for this section (``locus:`` is the LOCUS ablation overlays' own)"""
AGENT_FRAMES = ("qwen2_5_vl", "qwen3_vl")
STAGE2_REWARD = "compute_score_stage2"
"""the reward function whose recipes train grounding: every row needs nested GT boxes"""


@dataclass
class LfpcConfig:
    """The ``lfpc:`` section: how long a crop-tool trajectory may run, and the prompt it starts from."""

    max_turns: int = 5
    """assistant turns per trajectory (Table 12: 5); reaching it without an answer scores as wrong"""
    max_tokens_per_turn: int = 2048
    """tokens one assistant turn may write (Table 12); data.max_response_length caps the whole trajectory"""
    system_prompt: str | None = None
    """system prompt file ({tools} = the tool schema), from the project root; null: the agent's own for coord_frame"""


def read_lfpc(layers: Iterable[Mapping[str, Any] | None]) -> LfpcConfig:
    """The section merged from ``layers`` (recipe, then overrides; None skipped) over the defaults.

    Raises UserError for an unknown key (with the closest known one), a value of the wrong type, or a value out of
    range.
    """
    names = [field.name for field in dataclasses.fields(LfpcConfig)]
    values: dict[str, Any] = {}
    for layer in layers:
        if layer is None:
            continue
        if not isinstance(layer, Mapping):
            raise UserError(f"the `{LFPC_SECTION}:` section must be a mapping, got {layer!r}")
        for key, value in layer.items():
            if key not in names:
                raise UserError(f"unknown {LFPC_SECTION} key {key!r}{did_you_mean(str(key), names)}")
            values[key] = value
    config = LfpcConfig(**values)
    problems = config_errors(config)
    if problems:
        raise UserError(problems[0])
    return config


def config_errors(config: LfpcConfig) -> list[str]:
    """What is wrong with the section on its own (types and ranges).

    >>> config_errors(LfpcConfig(max_turns=0))
    ['lfpc.max_turns must be a positive integer (assistant turns per trajectory), got 0']
    """
    errors = []
    for name, what in (("max_turns", "assistant turns per trajectory"), ("max_tokens_per_turn", "tokens per turn")):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            errors.append(f"{LFPC_SECTION}.{name} must be a positive integer ({what}), got {value!r}")
    if config.system_prompt is not None and not isinstance(config.system_prompt, str):
        errors.append(f"{LFPC_SECTION}.system_prompt must be a file path or null, got {config.system_prompt!r}")
    return errors


def lfpc_errors(config: LfpcConfig, cfg: Mapping[str, Any], root: str | Path | None = None) -> list[str]:
    """What an LFPC recipe must satisfy beyond a valid EasyR1 config; ``cfg`` is the resolved EasyR1 config (a
    nested dict: ``locus_train.easyr1_config.resolve``) and ``root`` the folder relative paths start from.

    >>> cfg = {"data": {"min_pixels": 262144, "max_pixels": 1605632, "max_response_length": 16384},
    ...        "worker": {"rollout": {"limit_images": 5},
    ...                   "reward": {"reward_function_kwargs": {"coord_frame": "qwen2_5_vl"}}}}
    >>> [error.split(" (")[0] for error in lfpc_errors(LfpcConfig(), cfg)]
    ['data.min_pixels 262144 would make EasyR1 upscale every crop smaller than that']
    """
    errors = config_errors(config)
    data, rollout = cfg["data"], cfg["worker"]["rollout"]
    coord_frame = cfg["worker"]["reward"]["reward_function_kwargs"].get("coord_frame", "qwen2_5_vl")
    if coord_frame not in AGENT_FRAMES:
        errors.append(
            f"worker.reward.reward_function_kwargs.coord_frame is {coord_frame!r}; a crop-tool agent writes boxes in "
            f"its model's frame, one of {', '.join(AGENT_FRAMES)}"
        )
        return errors
    if errors:
        return errors
    # the view, then one crop per tool turn: max_turns - 1 tool turns at most
    need = config.max_turns
    if rollout["limit_images"] < need:
        errors.append(
            f"worker.rollout.limit_images is {rollout['limit_images']}; a trajectory of lfpc.max_turns "
            f"{config.max_turns} holds the view and one crop per tool turn: set it to at least {need} (vLLM refuses "
            "a prompt with more images; calls beyond the limit get an error turn)"
        )
    factor = BACKBONES[coord_frame].factor
    if data["min_pixels"] is not None and data["min_pixels"] > factor * factor:
        errors.append(
            f"data.min_pixels {data['min_pixels']} would make EasyR1 upscale every crop smaller than that (the "
            f"smallest crop is {factor}x{factor} = {factor * factor} px), erasing the detail it was cut for; set "
            f"data.min_pixels <= {factor * factor}"
        )
    if data["max_pixels"] is not None and data["max_pixels"] < factor * factor:
        errors.append(f"data.max_pixels {data['max_pixels']} is below one visual token ({factor * factor} px)")
    lora = cfg["worker"].get("actor", {}).get("model", {}).get("lora", {}).get("rank", 0)
    if lora:
        errors.append(
            f"worker.actor.model.lora.rank is {lora}; the crop-tool rollout does not hand vLLM the LoRA adapter, so "
            "it would sample from the base model: train LFPC without LoRA (rank 0)"
        )
    if config.max_tokens_per_turn > data["max_response_length"]:
        errors.append(
            f"lfpc.max_tokens_per_turn {config.max_tokens_per_turn} exceeds data.max_response_length "
            f"{data['max_response_length']} (the whole trajectory, tool turns included)"
        )
    path = system_prompt_path(config, root)
    if path is not None and not path.is_file():
        errors.append(f"lfpc.system_prompt {config.system_prompt} not found (looked at {path})")
    return errors


def crop_tokens(coord_frame: str, data_max_pixels: int | None, processor_max_pixels: int) -> int:
    """Visual tokens a crop may take: the data cap (EasyR1 shrinks larger images) within the processor's own.

    A crop sized within both is a fixed point of EasyR1's ``process_image`` and of the processor's ``smart_resize``,
    so vLLM, the actor and the reward see the image the tool made.

    >>> crop_tokens("qwen2_5_vl", 1605632, 12845056)  # the LFPC recipes' cap: 2,048 tokens
    2048
    """
    factor = BACKBONES[coord_frame].factor
    cap = processor_max_pixels if data_max_pixels is None else min(data_max_pixels, processor_max_pixels)
    return max(1, cap // (factor * factor))


def is_stage2(reward_function: str | None) -> bool:
    """Whether a recipe's reward function trains grounding (Stage II: every question needs nested GT boxes).

    >>> is_stage2("./locus_reward/lfpc.py:compute_score_stage2"), is_stage2("/x/lfpc.py:compute_score_stage1")
    (True, False)
    """
    return bool(reward_function) and str(reward_function).rsplit(":", 1)[-1] == STAGE2_REWARD


def system_prompt_path(config: LfpcConfig, root: str | Path | None = None) -> Path | None:
    """The absolute path of ``lfpc.system_prompt`` (relative to ``root``), or None for the agent's default."""
    if config.system_prompt is None:
        return None
    path = Path(config.system_prompt).expanduser()
    return path if path.is_absolute() or root is None else Path(root) / path


def system_prompt_file(config: LfpcConfig, coord_frame: str, root: str | Path | None = None) -> Path:
    """The file of the system prompt an LFPC run trains with: ``lfpc.system_prompt``, or the agent's own prompt file
    for the reward's coordinate frame (what ``locus-eval agent`` evaluates with).

    >>> system_prompt_file(LfpcConfig(), "qwen2_5_vl").name
    'qwen2_5_vl.txt'
    """
    path = system_prompt_path(config, root)
    if path is None:
        check_agent_frame(coord_frame)
        return PROMPTS_DIR / f"{coord_frame}.txt"
    if not path.is_file():
        raise UserError(f"lfpc.system_prompt {path} not found")
    return path


def system_prompt_text(config: LfpcConfig, coord_frame: str, root: str | Path | None = None) -> str:
    """The system prompt an LFPC run trains with (:func:`system_prompt_file`), the tool schema written in.

    >>> system_prompt_text(LfpcConfig(), "qwen3_vl").startswith("You are a helpful assistant")
    True
    >>> from locus_agent.conversation import system_prompt
    >>> system_prompt_text(LfpcConfig(), "qwen3_vl") == system_prompt("qwen3_vl")
    True
    """
    return with_tool_schema(system_prompt_file(config, coord_frame, root).read_text(encoding="utf-8"))
