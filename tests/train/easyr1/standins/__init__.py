"""Import stand-ins for the two modules EasyR1 imports at top level that cannot exist on a CPU machine.

* ``vllm`` (and the submodules EasyR1 names: ``vllm.lora.*``, ``vllm.distributed``): imported at top level by
  ``verl.workers.rollout.vllm_rollout_spmd``, ``verl.utils.vllm_utils`` and ``verl.workers.sharding_manager``, which
  ``verl.trainer.config`` (PPOConfig), ``verl.workers.fsdp_workers`` and ``verl.trainer.ray_trainer`` reach through
  package ``__init__`` files. vLLM needs a GPU and is not installed on CPU machines.
* ``qwen_vl_utils`` / ``qwen_vl_utils.vision_process``: ``verl.utils.dataset`` imports ``fetch_video`` from it at
  top level; the real module needs torchvision, which the CPU environment does not have. EasyR1 calls it for videos
  only, and LOCUS data has no videos.

The code under test never calls into them: every name they provide is a class or function that raises
:class:`StandInCalled` when called or instantiated, so a test that reached vLLM or video decoding would fail loudly
instead of passing on a fake. They are installed only as ``sys.modules`` entries, for the EasyR1 tests only, by the
package-scoped fixture in ``tests/train/easyr1/conftest.py``, and removed again after those tests.
"""

import types
from typing import Any


class StandInCalled(RuntimeError):
    """Raised when code under test calls into an import stand-in: the test would be exercising a fake."""


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


def _refusing(qualified: str) -> type:
    """A class usable in imports, annotations and subclassing that raises on instantiation."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise StandInCalled(f"{qualified} is an import stand-in (tests/train/easyr1/standins); nothing may call it")

    return type(qualified.rsplit(".", 1)[-1], (), {"__init__": refuse, "__new__": refuse, "__call__": refuse})


class StandInModule(types.ModuleType):
    """A module whose every public attribute is a refusing class named after the requested attribute."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        value = _refusing(f"{self.__name__}.{name}")
        setattr(self, name, value)
        return value


def modules() -> dict[str, types.ModuleType]:
    """Fresh stand-in modules, parents linked to children the way the import system links real packages."""
    made = {name: StandInModule(name) for name in MODULES}
    for name, module in made.items():
        module.__path__ = []  # a package, so `from vllm.lora.request import ...` resolves through sys.modules
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(made[parent], child, module)
    return made
