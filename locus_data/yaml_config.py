"""The one loader of LOCUS configs and recipes: YAML files and ``key=value`` overrides, merged by OmegaConf.

EasyR1 builds its config as ``OmegaConf.merge(structured(schema), yaml, cli)``; every LOCUS config is read the same
way, through these functions: the data config (:mod:`locus_data.config`) and the TRL recipe
(:mod:`locus_train.trl.config`) with :func:`load_structured`, the EasyR1 recipes and their ablation overlays
(:mod:`locus_train.easyr1_config`, :mod:`locus_train.recipe`) with :func:`read_yaml` and :func:`override_layers`.
Each problem is one UserError naming the file or key and the fix; an unknown key comes with the closest known one.

omegaconf is imported inside the functions: pool workers import :mod:`locus_data.config` and never need it.

>>> from dataclasses import dataclass
>>> @dataclass
... class Demo:
...     steps: int = 1
...     name: str = "run"
>>> load_structured(Demo, None, ["steps=3"], "demo config")
Demo(steps=3, name='run')
>>> load_structured(Demo, None, ["step=3"], "demo config")
Traceback (most recent call last):
...
locus_data.errors.UserError: unknown demo config key 'step'; did you mean 'steps'?
"""

import dataclasses
import difflib
from collections.abc import Sequence
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from locus_data.errors import UserError


if TYPE_CHECKING:
    from omegaconf import DictConfig


def read_yaml(path: str | Path, what: str = "config file", error: type[UserError] = UserError) -> "DictConfig":
    """A YAML file holding a mapping, as an OmegaConf config; ``error`` (a UserError) for a missing, malformed or
    non-mapping file, naming it as ``what``."""
    from omegaconf import DictConfig, OmegaConf  # only for tools given a config

    path = Path(path)
    if path.is_dir():
        raise error(f"{what} {path} is a directory; give a YAML file in it")
    if not path.is_file():
        raise error(f"{what} not found: {path}")
    try:
        config = OmegaConf.load(path)
    except Exception as err:  # yaml errors carry their own line/column
        raise error(f"{what} {path} is not valid YAML: {err}") from None
    if not isinstance(config, DictConfig):
        raise error(f"{what} {path} must hold a mapping of keys at the top level (got a {type(config).__name__})")
    return config


def override_layers(
    overrides: Sequence[str], kind: str = "", error: type[UserError] = UserError
) -> list["DictConfig"]:
    """One OmegaConf layer per ``key=value`` override, in order (later ones win when merged); ``kind`` names them in
    the error for an item without ``=`` (``"an EasyR1 override "``)."""
    from omegaconf import OmegaConf  # only for tools given overrides

    layers = []
    for item in overrides:
        if "=" not in item or item.startswith("="):
            raise error(f"expected {kind}key=value, got {item!r}")
        layers.append(OmegaConf.from_dotlist([item]))
    return layers


def load_structured(schema: type, path: str | Path | None, overrides: Sequence[str], name: str) -> Any:
    """``schema``'s defaults <- YAML file <- ``key=value`` overrides, as a ``schema`` object. Raises UserError naming
    the problem; ``name`` says which config (``"data config"``), and an unknown key comes with the closest one."""
    from omegaconf import OmegaConf
    from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

    layers: list[Any] = [OmegaConf.structured(schema)]
    if path is not None:
        layers.append(read_yaml(path, name))
    layers += override_layers(overrides)
    try:
        merged = OmegaConf.merge(*layers)
    except ConfigKeyError as err:  # a key the dataclass does not have
        key = str(err.full_key or err.key)
        raise UserError(f"unknown {name} key {key!r}{did_you_mean(key, field_paths(schema))}") from None
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None) or getattr(err, "key", None)
        raise UserError(f"{name}: bad value for {key!r}: {str(err).splitlines()[0]}") from None
    return OmegaConf.to_object(merged)


def options_section(options: type, exclude: type | None, name: str, module: str, doc: str) -> type:
    """A config section holding the fields of a frozen options dataclass (less those of ``exclude``), as declared.

    OmegaConf merges YAML and overrides into a structured config in place, which a frozen dataclass forbids; this
    mutable copy takes each field's type and default from ``options`` (the one place they are declared), and the
    loaded section turns back into ``options`` with its ``from_kwargs``.

    >>> from locus_reward.options import FrameOptions, PixelLimits
    >>> Section = options_section(FrameOptions, PixelLimits, "Section", __name__, "The frame options.")
    >>> load_structured(Section, None, ["think_prefilled=true"], "section")
    Section(coord_frame='qwen2_5_vl', think_prefilled=True, allow_empty_think=True)
    """
    skip = {f.name for f in fields(exclude)} if exclude is not None else set()
    section = dataclasses.make_dataclass(
        name,
        [
            (f.name, f.type, dataclasses.field(default=f.default, default_factory=f.default_factory))
            for f in fields(options)
            if f.name not in skip
        ],
    )
    section.__module__, section.__doc__ = module, doc  # so it pickles and reads as the caller's own class
    return section


def field_paths(schema: type, prefix: str = "") -> list[str]:
    """Dotted names of every field of a (nested) config dataclass, sections included."""
    paths = []
    for f in fields(schema):
        paths.append(f"{prefix}{f.name}")
        if is_dataclass(f.type):
            paths += field_paths(f.type, f"{prefix}{f.name}.")
    return paths


def did_you_mean(name: str, candidates: list[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest candidate, or ``""``.

    >>> did_you_mean("tiny_ration", ["tiny_ratio", "large_ratio"])
    "; did you mean 'tiny_ratio'?"
    """
    match = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return f"; did you mean {match[0]!r}?" if match else ""
