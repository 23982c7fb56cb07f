"""Import stand-ins for the two modules EasyR1 imports at top level that cannot exist on a CPU machine.

* ``vllm`` (and the submodules EasyR1 names: ``vllm.lora.*``, ``vllm.distributed``): imported at top level by
  ``verl.workers.rollout.vllm_rollout_spmd``, ``verl.utils.vllm_utils`` and ``verl.workers.sharding_manager``, which
  ``verl.trainer.config`` (PPOConfig), ``verl.workers.fsdp_workers`` and ``verl.trainer.ray_trainer`` reach through
  package ``__init__`` files. vLLM needs a GPU and is not installed on CPU machines.
* ``qwen_vl_utils`` / ``qwen_vl_utils.vision_process``: ``verl.utils.dataset`` imports ``fetch_video`` from it at
  top level; the real module needs torchvision, which the CPU environment does not have. EasyR1 calls it for videos
  only, and LOCUS data has no videos.

A stand-in only for what cannot exist on CPU, named as such, behind the same interface: every name these modules
provide is a class or function that raises :class:`StandInCalled` when called or instantiated, so code that reached
vLLM or video decoding fails loudly instead of running on a fake. Generation on CPU goes through a real engine
behind vLLM's interface instead (:mod:`locus_train.easyr1.engine`).

They are installed only as ``sys.modules`` entries: by ``locus-train easyr1-step`` for the modules that are really
missing (:func:`install_missing`), and by the EasyR1 test package for its tests (:func:`modules`), which removes
them again afterwards. Nothing else in LOCUS installs them.
"""

import importlib
import sys
import types
from typing import Any


class StandInCalled(RuntimeError):
    """Raised when code calls into an import stand-in: it would be running on a fake."""


MODULES = (
    "vllm",
    "vllm.lora",
    "vllm.lora.models",
    "vllm.lora.request",
    "vllm.lora.utils",
    "vllm.lora.worker_manager",
    "vllm.distributed",
    "vllm.distributed.parallel_state",
    "qwen_vl_utils",
    "qwen_vl_utils.vision_process",
)
# the module whose import decides whether a family is really available (qwen_vl_utils imports, but its
# vision_process needs torchvision)
PROBES = {"vllm": "vllm", "qwen_vl_utils": "qwen_vl_utils.vision_process"}


def _refusing(qualified: str) -> type:
    """A class usable in imports, annotations and subclassing that raises on instantiation."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise StandInCalled(f"{qualified} is an import stand-in (locus_train.easyr1.standins); nothing may call it")

    return type(qualified.rsplit(".", 1)[-1], (), {"__init__": refuse, "__new__": refuse, "__call__": refuse})


class StandInModule(types.ModuleType):
    """A module whose every public attribute is a refusing class named after the requested attribute."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        value = _refusing(f"{self.__name__}.{name}")
        setattr(self, name, value)
        return value


def modules(families: tuple[str, ...] = tuple(PROBES)) -> dict[str, types.ModuleType]:
    """Fresh stand-in modules of ``families`` (top-level names), parents linked to children as real packages are.

    >>> sorted(modules(("qwen_vl_utils",)))
    ['qwen_vl_utils', 'qwen_vl_utils.vision_process']
    """
    made = {name: StandInModule(name) for name in MODULES if name.split(".")[0] in families}
    for name, module in made.items():
        module.__path__ = []  # a package, so `from vllm.lora.request import ...` resolves through sys.modules
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(made[parent], child, module)
    return made


def missing() -> tuple[str, ...]:
    """The families whose real modules cannot be imported here."""
    absent = []
    for family, probe in PROBES.items():
        try:
            importlib.import_module(probe)
        except ImportError:
            absent.append(family)
    return tuple(absent)


def install_missing() -> tuple[str, ...]:
    """Put stand-ins into ``sys.modules`` for the families that are really missing; returns their names."""
    absent = missing()
    for name, module in modules(absent).items():
        sys.modules[name] = module
    return absent
