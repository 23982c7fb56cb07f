"""Compose a LOCUS recipe and check it the way EasyR1 (pinned commit) will, before any GPU is allocated.

EasyR1 builds its config as ``OmegaConf.merge(structured(PPOConfig()), yaml, cli)`` then ``to_object``: an unknown
key or a mistyped value is an error, but only once the job runs, and its batch-size rules are checked only after Ray
has started the workers. This module repeats all of that on any machine:

* the schema comes from ``locus_train/easyr1_schema/schema.json`` (package data, generated from the pinned commit's
  source by ``generate.py`` beside it), and is turned back into dataclasses so OmegaConf applies exactly its own
  merge, type and interpolation rules;
* :func:`startup_errors` restates the divisibility rules of ``ray_trainer.py``/``fsdp_workers.py``/
  ``vllm_rollout_spmd.py`` for the declared GPU count;
* :func:`locus_errors` adds the rules a LOCUS run needs on top (two images, an ``iou`` filter key, greedy validation,
  reward pixel limits that are interpolations of the data section's).

Ablations are small YAML overlays (``config/ablations/*.yaml``) merged on top of a recipe. Their optional ``locus:``
section is ours (which data config to build; for LFPC overlays, which selection strategy, stage or data mix) and is
removed before EasyR1 sees the result.
"""

import dataclasses
import difflib
import json
import re
import typing
from collections import deque
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from locus_data.yaml_config import override_layers, read_yaml
from locus_train.recipe import RecipeError


SCHEMA_PATH = Path(__file__).with_name("easyr1_schema") / "schema.json"
PINNED_COMMIT = "b44b311b669bf1fd1aa2fc36f2251482ba33cb16"
LOCUS_SECTION = "locus"
# Keys of an ablation's `locus:` section (everything else in an overlay is EasyR1 config): the LOCUS launchers' data
# keys, then the LFPC launcher's (examples/lfpc_qwen2_5_vl_7b.sh; locus_train.preflight.lfpc documents them).
LFPC_LAUNCH_KEYS = ("selection", "stage", "mix_data")
LOCUS_KEYS = ("data_config", "data_dir", *LFPC_LAUNCH_KEYS)
CUE_SEARCH_IMAGES = 2  # cue-search prompts carry the full image and the cue


def load_schema(path: Path = SCHEMA_PATH) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


# ----------------------------------------------------------------------------------------------------------------
# composing
# ----------------------------------------------------------------------------------------------------------------


def compose(recipe: Path, ablations: list[Path] = (), overrides: list[str] = ()) -> tuple[DictConfig, dict[str, Any]]:
    """Recipe <- ablation overlays <- ``key=value`` overrides, unresolved (interpolations kept).

    Returns the merged EasyR1 config and the merged ``locus:`` sections of the overlays.
    """
    layers = [read_yaml(recipe, error=RecipeError)]
    if LOCUS_SECTION in layers[0]:
        raise RecipeError(f"{recipe}: a training recipe is passed to EasyR1 as is; move `{LOCUS_SECTION}:` out of it")
    locus: dict[str, Any] = {}
    for path in ablations:
        overlay = read_yaml(path, error=RecipeError)
        section = overlay.pop(LOCUS_SECTION, None)
        if section is not None:
            section = OmegaConf.to_container(section)
            unknown = set(section) - set(LOCUS_KEYS)
            if unknown:
                raise RecipeError(f"{path}: unknown `{LOCUS_SECTION}:` keys {sorted(unknown)}; known: {LOCUS_KEYS}")
            locus.update(section)
        layers.append(overlay)
    return with_overrides(OmegaConf.merge(*layers), overrides), locus


def with_overrides(cfg: DictConfig, overrides: list[str]) -> DictConfig:
    """A composed config with ``key=value`` overrides on top (``cfg`` itself is left as it is)."""
    return OmegaConf.merge(cfg, *override_layers(overrides, "an EasyR1 override ", RecipeError))


# ----------------------------------------------------------------------------------------------------------------
# schema
# ----------------------------------------------------------------------------------------------------------------


_GENERICS = {"Optional": typing.Optional, "Tuple": tuple, "tuple": tuple, "list": list, "dict": dict}
_ATOMS = {"int": int, "float": float, "str": str, "bool": bool, "Any": Any, "dict": dict, "list": list, "tuple": tuple}
_TYPE_TOKEN = re.compile(r"\s*([A-Za-z_][A-Za-z_0-9]*|\[|\]|,)")


def _python_type(type_string: str, classes: dict[str, type]) -> Any:
    """An annotation recorded as source text (``Optional[int]``, ``tuple[float, float]``) as a type object.

    Parsed, never evaluated: only the builtin atoms, the generics above and the schema's own dataclass names are
    accepted, so the fixture cannot run code. ``Tuple[str]`` and ``tuple[str]`` mean the same to OmegaConf;
    ``Optional`` stays the typing one.

    >>> _python_type("Optional[tuple[float, float]]", {})
    typing.Optional[tuple[float, float]]
    """
    tokens = _TYPE_TOKEN.findall(type_string)
    if "".join(tokens) != type_string.replace(" ", ""):
        raise ValueError(f"unsupported annotation {type_string!r} in the EasyR1 schema")
    return _parse_type(deque(tokens), classes, type_string)


def _parse_type(tokens: deque, classes: dict[str, type], source: str) -> Any:
    name = tokens.popleft()
    if tokens and tokens[0] == "[":
        if name not in _GENERICS:
            raise ValueError(f"unsupported generic {name!r} in {source!r}")
        tokens.popleft()
        args = [_parse_type(tokens, classes, source)]
        while tokens.popleft() == ",":  # ends on the closing bracket
            args.append(_parse_type(tokens, classes, source))
        return _GENERICS[name][tuple(args) if len(args) > 1 else args[0]]
    if name in classes:
        return classes[name]
    if name not in _ATOMS:
        raise ValueError(f"unknown type {name!r} in {source!r}")
    return _ATOMS[name]


def schema_classes(schema: dict[str, Any]) -> dict[str, type]:
    """Dataclasses equivalent to EasyR1's config classes (fields, annotations, defaults), built from the fixture."""
    specs = schema["dataclasses"]
    built: dict[str, type] = {}

    def build(name: str) -> type:
        if name in built:
            return built[name]
        fields = []
        for field_name, spec in specs[name]["fields"].items():
            factory = spec.get("factory")
            if factory in specs:
                build(factory)
            annotation = _python_type(spec["type"], built)
            init = spec.get("init", True)
            if factory is not None:
                default_factory = built[factory] if factory in specs else _python_type(factory, built)
                value = dataclasses.field(default_factory=default_factory, init=init)
            else:
                default = spec["default"]
                if isinstance(default, list):  # tuples were written as JSON lists
                    default = tuple(default)
                value = dataclasses.field(default=default, init=init)
            fields.append((field_name, annotation, value))
        built[name] = dataclasses.make_dataclass(name, fields)
        return built[name]

    for name in specs:
        build(name)
    return built


def resolve(cfg: DictConfig, schema: dict[str, Any]) -> dict[str, Any]:
    """Merge into the schema and resolve, as ``verl.trainer.main`` does; a plain nested dict of final values."""
    root = schema_classes(schema)[schema["root"]]
    try:
        merged = OmegaConf.merge(OmegaConf.structured(root()), cfg)
        return dataclasses.asdict(OmegaConf.to_object(merged))
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None) or "?"
        raise RecipeError(f"EasyR1 would reject the config at `{key}`: {str(err).splitlines()[0]}") from None


def _leaf_type_error(value: Any, type_string: str) -> str | None:
    """Why ``value`` does not fit the annotation, or None. Stricter than OmegaConf, which turns "8" into 8."""
    if isinstance(value, str) and value.startswith("${"):
        return None  # an interpolation: checked after resolution
    optional = type_string.startswith("Optional[")
    inner = type_string[len("Optional[") : -1] if optional else type_string
    if value is None:
        return None if optional else "null is not allowed"
    base = inner.split("[", 1)[0].lower()
    ok = {
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, (int, float)) and not isinstance(value, bool),
        "bool": isinstance(value, bool),
        "str": isinstance(value, str),
        "tuple": isinstance(value, list),
        "list": isinstance(value, list),
        "dict": isinstance(value, dict),
        "any": True,
    }.get(base)
    if ok is None:
        return f"unsupported annotation {type_string!r} in the schema fixture"
    return None if ok else f"expected {inner}, got {type(value).__name__} {value!r}"


def schema_errors(cfg: DictConfig | dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """Unknown keys, auto keys (EasyR1 fills them itself), mistyped values and unaccepted choices."""
    raw = OmegaConf.to_container(cfg, resolve=False) if isinstance(cfg, DictConfig) else cfg
    specs = schema["dataclasses"]
    errors: list[str] = []

    def walk(node: dict[str, Any], class_name: str, prefix: str) -> None:
        fields = specs[class_name]["fields"]
        for key, value in node.items():
            path = f"{prefix}{key}"
            if key not in fields:
                close = difflib.get_close_matches(key, list(fields), n=1)
                hint = f"; did you mean `{prefix}{close[0]}`?" if close else ""
                errors.append(f"`{path}` is not an EasyR1 config key (schema class {class_name}){hint}")
                continue
            spec = fields[key]
            if not spec.get("init", True):
                errors.append(f"`{path}` is filled in by EasyR1 itself; remove it")
            elif spec.get("factory") in specs:
                if isinstance(value, dict):
                    walk(value, spec["factory"], f"{path}.")
                else:
                    errors.append(f"`{path}` must be a mapping, got {value!r}")
            else:
                problem = _leaf_type_error(value, spec["type"])
                if problem:
                    errors.append(f"`{path}`: {problem}")

    walk(raw, schema["root"], "")
    if not errors:
        resolved = resolve(cfg if isinstance(cfg, DictConfig) else OmegaConf.create(cfg), schema)
        for key, allowed in schema["choices"].items():
            value = _get(resolved, key)
            if value not in allowed:
                errors.append(f"`{key}` is {value!r}; EasyR1 accepts {allowed}")
    return errors


def _get(cfg: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        cfg = cfg[part]
    return cfg


# ----------------------------------------------------------------------------------------------------------------
# rules EasyR1 checks only after the cluster has started
# ----------------------------------------------------------------------------------------------------------------


def startup_errors(cfg: dict[str, Any]) -> list[str]:
    """EasyR1's batch and parallelism rules for ``trainer.nnodes x trainer.n_gpus_per_node`` GPUs.

    ``cfg`` is a resolved config (:func:`resolve`). Each message quotes the numbers and the rule's home in EasyR1.
    """
    data, actor, rollout = cfg["data"], cfg["worker"]["actor"], cfg["worker"]["rollout"]
    trainer, algorithm = cfg["trainer"], cfg["algorithm"]
    world = trainer["nnodes"] * trainer["n_gpus_per_node"]
    n, rollout_bs, global_bs = rollout["n"], data["rollout_batch_size"], actor["global_batch_size"]
    errors = []
    if world < 1:
        return [f"trainer.nnodes x trainer.n_gpus_per_node = {world}; need at least one GPU"]
    # ray_trainer.py: RayPPOTrainer.__init__
    if rollout_bs % global_bs:
        errors.append(
            f"data.rollout_batch_size {rollout_bs} must be divisible by worker.actor.global_batch_size {global_bs}"
        )
    micro_exp = actor["micro_batch_size_per_device_for_experience"]
    if (rollout_bs * n) % micro_exp:
        errors.append(
            f"data.rollout_batch_size x rollout.n = {rollout_bs} x {n} must be divisible by "
            f"worker.actor.micro_batch_size_per_device_for_experience {micro_exp}"
        )
    if algorithm["adv_estimator"] in ("grpo", "rloo") and n <= 1:
        errors.append(f"algorithm.adv_estimator={algorithm['adv_estimator']} needs worker.rollout.n > 1, got {n}")
    # fsdp_workers.py: FSDPWorker._init_dist_mesh (global batch counts prompts; it is multiplied by n there)
    dp = world // actor["ulysses_size"]
    per_device = (global_bs * n if n > 1 else global_bs) // dp
    micro_update = actor["micro_batch_size_per_device_for_update"]
    if per_device == 0:
        errors.append(f"worker.actor.global_batch_size x rollout.n = {global_bs * n} is smaller than {dp} GPUs")
    elif per_device % micro_update:
        errors.append(
            f"per-device update batch {global_bs} x {n} / {dp} GPUs = {per_device} must be divisible by "
            f"worker.actor.micro_batch_size_per_device_for_update {micro_update}"
        )
    elif actor["fsdp"]["enable_cpu_offload"] and per_device != micro_update:
        errors.append("worker.actor.fsdp.enable_cpu_offload needs no gradient accumulation (per-device = micro batch)")
    # fsdp_workers.py: rollout device mesh; vllm_rollout_spmd.py: vLLMRollout.__init__
    tp = rollout["tensor_parallel_size"]
    if tp > world or world % tp:
        errors.append(f"worker.rollout.tensor_parallel_size {tp} must divide the world size {world}")
    budget = data["max_prompt_length"] + data["max_response_length"]
    if rollout["max_num_batched_tokens"] < budget:
        errors.append(
            f"worker.rollout.max_num_batched_tokens {rollout['max_num_batched_tokens']} must be >= "
            f"data.max_prompt_length + data.max_response_length = {budget}"
        )
    if rollout["max_model_len"] is not None and rollout["max_model_len"] < budget:
        errors.append(f"worker.rollout.max_model_len {rollout['max_model_len']} is below prompt + response {budget}")
    return errors


# ----------------------------------------------------------------------------------------------------------------
# LOCUS rules
# ----------------------------------------------------------------------------------------------------------------


def locus_errors(raw: DictConfig, cfg: dict[str, Any], images_per_prompt: int = CUE_SEARCH_IMAGES) -> list[str]:
    """What a LOCUS run needs beyond a valid EasyR1 config. ``raw`` is unresolved, ``cfg`` resolved."""
    data, rollout = cfg["data"], cfg["worker"]["rollout"]
    errors = []
    if rollout["limit_images"] != images_per_prompt:
        errors.append(
            f"worker.rollout.limit_images is {rollout['limit_images']}; LOCUS prompts hold {images_per_prompt} "
            f"image(s), set it to {images_per_prompt}"
        )
    for key in ("format_prompt",):
        if not data[key]:
            errors.append(f"data.{key} is not set; EasyR1 would train without the answer-format instructions")
    algorithm = cfg["algorithm"]
    if algorithm["online_filtering"] and algorithm["filter_key"] != "iou":
        errors.append(
            f"algorithm.filter_key is {algorithm['filter_key']!r}: filter on `iou` (a group whose IoUs are all 0 "
            "still has mean `overall` 0.1 from the format term and would survive the filter)"
        )
    return errors + reward_errors(raw, cfg)


def reward_errors(raw: DictConfig, cfg: dict[str, Any]) -> list[str]:
    """The rules every LOCUS and LFPC recipe keeps: a reward function, its pixel limits interpolated from the data
    section, greedy single-sample validation. ``raw`` is unresolved, ``cfg`` resolved."""
    errors = []
    if not cfg["worker"]["reward"]["reward_function"]:
        errors.append("worker.reward.reward_function is not set")
    kwargs = OmegaConf.to_container(raw, resolve=False).get("worker", {}).get("reward", {})
    kwargs = kwargs.get("reward_function_kwargs", {})
    for key in ("min_pixels", "max_pixels"):
        if kwargs.get(key) != f"${{data.{key}}}":
            errors.append(
                f"worker.reward.reward_function_kwargs.{key} must be the interpolation ${{data.{key}}} so the "
                f"reward's coordinate frame follows the images, got {kwargs.get(key)!r}"
            )
    val = cfg["worker"]["rollout"]["val_override_config"]
    if val.get("n", 1) != 1 or not (val.get("top_k") == 1 or val.get("temperature", 1.0) == 0):
        errors.append(f"worker.rollout.val_override_config {val} is not greedy single-sample validation")
    return errors
