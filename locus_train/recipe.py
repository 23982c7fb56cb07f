"""The one reader of training recipes: what a recipe says about the images and boxes its model sees.

The SFT exporter, the prompt-length check and the evaluator must use the recipe's coordinate frame, pixel limits and
format prompt, or their boxes and prompts drift from training. They read them here (:func:`read_recipe`: the frame is
a :class:`locus_reward.options.FrameOptions`, the reward's own options class, built by :func:`frame_options`), and
fill their flags with one rule, :func:`resolve`: an explicit flag wins, then the recipe, then the tool's fallback.

A recipe names files relative to the project root it lives in (the folder holding ``config/``, where EasyR1 is
launched); :func:`recipe_root` finds it from the recipe's own path, so tools work from any directory.

>>> settings = RecipeSettings(FrameOptions(coord_frame="qwen3_vl", min_pixels=1024, max_pixels=409600), None, 1536)
>>> resolve({"coord_frame": None, "max_pixels": 2048}, settings, fallback={})
{'coord_frame': 'qwen3_vl', 'max_pixels': 2048}
>>> resolve({"min_pixels": None}, None, fallback=DEFAULT_FRAME.pixel_kwargs)
{'min_pixels': 1024}
"""

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from locus_data.errors import UserError
from locus_data.yaml_config import read_yaml
from locus_reward.options import FrameOptions, PixelLimits


PROMPTS_DIR = Path(__file__).with_name("prompts")
"""the format prompts, shipped as package data (recipes point here: ``./locus_train/prompts/*.jinja``)"""
DEFAULT_FRAME = FrameOptions(min_pixels=1024, max_pixels=409600)
"""what tools assume without --recipe: the shipped cue-search recipes' frame (a test checks every recipe)"""
DEFAULT_MIN_PIXELS, DEFAULT_MAX_PIXELS = DEFAULT_FRAME.min_pixels, DEFAULT_FRAME.max_pixels
DEFAULT_FORMAT_PROMPTS = {
    "qwen2_5_vl": PROMPTS_DIR / "cue_search_qwen2_5_vl.jinja",
    "qwen3_vl": PROMPTS_DIR / "cue_search_qwen3_vl_thinking.jinja",
}
"""the recipes' cue-search format prompt per coordinate frame (``original`` has none: the plain problem)"""
# EasyR1's DataConfig defaults (b44b311), for keys a recipe leaves out
EASYR1_MAX_PROMPT_LENGTH = 512
REWARD_KWARGS = "worker.reward.reward_function_kwargs"
"""where an EasyR1 recipe keeps its reward's options"""


@dataclass(frozen=True)
class RecipeSettings:
    """The parts of an EasyR1 recipe that decide what the model sees and how it writes boxes."""

    frame: FrameOptions
    """the reward's frame options: ``reward_function_kwargs`` with ``data.min_pixels``/``data.max_pixels``"""
    format_prompt: str | None
    """absolute path of ``data.format_prompt``, or None when the recipe has none"""
    max_prompt_length: int
    """``data.max_prompt_length`` (prompt token budget, images included)"""

    def __getattr__(self, name: str) -> Any:
        # the frame's options read as settings too (coord_frame, min_pixels, think_prefilled, ...): one declaration
        if name != "frame" and name in FrameOptions.__dataclass_fields__:
            return getattr(self.frame, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


def frame_options(reward_kwargs: Mapping[str, Any], limits: PixelLimits | None = None) -> FrameOptions:
    """The frame options among a reward's keyword arguments (the other options are the reward's own business).

    ``limits`` replace the pixel limits in ``reward_kwargs`` (an unresolved recipe holds interpolations there).
    Raises ValueError for a value the reward would reject.

    >>> frame_options({"coord_frame": "qwen3_vl", "format_weight": 0.1, "min_pixels": "${data.min_pixels}"},
    ...               PixelLimits(1024, 409600)).min_pixels
    1024
    """
    given = limits.pixel_kwargs if limits is not None else {}
    names = [field.name for field in dataclasses.fields(FrameOptions) if field.name not in given]
    options = {name: reward_kwargs[name] for name in names if name in reward_kwargs}
    return FrameOptions.from_kwargs({**options, **given})


EASYR1_SECTIONS = frozenset({"algorithm", "worker", "trainer"})
"""top-level sections only an EasyR1 training recipe has (a TRL recipe has model/data/reward/grpo)"""


def recipe_root(path: str | Path) -> Path:
    """The folder a recipe's relative paths start from: the parent of the nearest ``config/`` above it.

    >>> recipe_root("/work/locus/config/trl/locus_qwen2_5_vl_3b_lora.yaml")
    PosixPath('/work/locus')
    >>> recipe_root("/home/me/my_recipe.yaml")  # outside a project: its own folder
    PosixPath('/home/me')
    """
    path = Path(path).absolute()
    for parent in path.parents:
        if parent.name == "config":
            return parent.parent
    return path.parent


class RecipeError(UserError):
    """The recipe cannot be read, composed or resolved; the message names the key and the fix."""


def read_recipe(path: str | Path) -> RecipeSettings:
    """Read a recipe YAML; raises RecipeError (a UserError) naming what is missing or malformed.

    Keys the recipe leaves out take EasyR1's defaults, as they would in training.
    """
    from omegaconf import OmegaConf  # omegaconf only for tools given a recipe

    config = read_yaml(path, error=RecipeError)
    if "data" not in config and "worker" not in config:  # a data config or another YAML, not a training recipe
        raise RecipeError(
            f"{path} is not an EasyR1 training recipe (no data or worker section); give config/locus_*.yaml"
        )
    kwargs = OmegaConf.select(config, REWARD_KWARGS) or {}
    if kwargs.get("coord_frame") is None:
        raise RecipeError(f"{path}: {REWARD_KWARGS}.coord_frame is not set")

    def data(key: str, default: Any) -> Any:
        return OmegaConf.select(config, f"data.{key}", default=default)

    prompt = data("format_prompt", None)
    if prompt and not Path(prompt).is_absolute():
        prompt = str((recipe_root(path) / prompt).resolve())
    # the reward's pixel limits are the data section's (recipes interpolate them; EasyR1's defaults when left out)
    easyr1 = PixelLimits()
    limits = PixelLimits(data("min_pixels", easyr1.min_pixels), data("max_pixels", easyr1.max_pixels))
    try:
        frame = frame_options(kwargs, limits)
    except (TypeError, ValueError) as err:
        raise RecipeError(f"{path}: {REWARD_KWARGS}: {err}") from None
    return RecipeSettings(frame, prompt, data("max_prompt_length", EASYR1_MAX_PROMPT_LENGTH))


def resolve(
    flags: Mapping[str, Any], recipe: RecipeSettings | None, fallback: Mapping[str, Any], unset: Any = None
) -> dict[str, Any]:
    """Each setting in ``flags``: the flag if given (not ``unset``), else the recipe's value, else ``fallback``'s.

    ``flags`` maps :class:`RecipeSettings` names (its fields and its frame's) to flag values. With a recipe its
    value always wins over the fallback, even null (a recipe's ``max_pixels: null`` really is no limit in training).
    """
    return {
        name: value
        if value is not unset
        else getattr(recipe, name)
        if recipe is not None
        else fallback.get(name, unset)
        for name, value in flags.items()
    }
