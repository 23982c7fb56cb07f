"""Generation backends behind one small interface: a batch of requests in, one generation per request out.

* ``hf`` (:mod:`.hf`): transformers ``generate``, CPU or GPU -- single-turn evaluation, attention analysis, CPU tests;
* ``vllm`` (:mod:`.vllm`): vLLM offline inference on a GPU (imported lazily);
* ``openai`` (:mod:`.openai_api`): any OpenAI-compatible server (``vllm serve``), images sent as data URLs;
* ``replay`` (:mod:`.replay`): recorded assistant turns from a JSONL file, for re-scoring and tests.

Single-turn users (``locus-eval bench``, ``cue-search``, the benchmarks) fill :attr:`Request.prompt` and
:attr:`Request.images` only: a chat prompt already rendered with the checkpoint's template, and the images after
EasyR1's ``process_image`` resize (:func:`locus_train.images.process_image`), so the model sees exactly what it saw in
training; the processor then applies its own ``smart_resize`` with its pixel limits, as in EasyR1. The agent loop
(:mod:`locus_agent.loop`) also fills the episode's segments, chat messages and which question, rollout and turn a
request belongs to; each backend reads what it needs.

torch, transformers, vllm and openai are imported inside the backends that need them: ``locus-eval score --help``
must work on a machine with none of them.
"""

from pathlib import Path
from typing import Any

from locus_agent.backends.base import Backend, Generation, Request, Sampling, Segment, budgets


__all__ = ["BACKENDS", "Backend", "Generation", "Request", "Sampling", "Segment", "budgets", "load_backend"]


BACKENDS = ("hf", "vllm", "openai", "replay")


def load_backend(name: str, model_path: str | Path, limit_images: int = 1, **kwargs: Any) -> Backend:
    """Build a backend by name; ``kwargs`` go to the backend's constructor.

    ``model_path`` is the checkpoint (hf, vllm), the served model name (openai) or unused (replay, which takes
    ``path``); ``limit_images`` is the most images one prompt holds (vLLM reserves room for them).
    """
    if name == "hf":
        from locus_agent.backends.hf import HFBackend

        return HFBackend(model_path, **kwargs)
    if name == "vllm":
        from locus_agent.backends.vllm import VLLMBackend

        return VLLMBackend(model_path, limit_images=limit_images, **kwargs)
    if name == "openai":
        from locus_agent.backends.openai_api import OpenAIBackend

        return OpenAIBackend(str(model_path), **kwargs)
    if name == "replay":
        from locus_agent.backends.replay import ReplayBackend

        return ReplayBackend(**kwargs)
    raise ValueError(f"unknown backend {name!r}; expected one of {', '.join(BACKENDS)}")
