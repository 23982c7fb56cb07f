"""Resumable batched generation: pending examples go through a backend and land in ``predictions.jsonl``.

The backend is built only when something is left to generate, so re-running a finished command (to rescore, or
after a crash during scoring) never loads a model.
"""

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from locus_agent.backends import Backend, Request
from locus_agent.processor import pixel_limits
from locus_eval.predictions import PREDICTIONS_FILE, PredictionWriter, check_settings, read_predictions
from locus_reward.options import PixelLimits
from locus_train.recipe import DEFAULT_FRAME


@dataclass
class GenerationConfig:
    """How responses are generated; saved with the predictions so a resumed run cannot silently change it."""

    max_new_tokens: int = 2048
    """generation budget per response (thinking models need EasyR1's ``max_response_length`` or more)"""
    pixels: PixelLimits = DEFAULT_FRAME.limits
    """EasyR1 ``data.min_pixels``/``data.max_pixels``: images are resized into them before the processor"""
    batch_size: int = 8
    """prompts per generate call (HF); vLLM schedules the whole chunk itself"""


def seen_limits(generation: GenerationConfig, processor: Any) -> PixelLimits:
    """The pixel limits of what the model sees: EasyR1's resize into the run's limits, then the processor's own."""
    low, high = pixel_limits(processor)
    return dataclasses.replace(generation.pixels, processor_min_pixels=low, processor_max_pixels=high)


def generate_missing(
    run_dir: str | Path,
    items: Sequence[Any],
    settings: dict[str, Any],
    make_backend: Callable[[], Backend],
    make_request: Callable[[Backend, Any], Request],
    record: Callable[[Any], dict[str, Any]],
    generation: GenerationConfig,
    desc: str = "generate",
) -> dict[int, dict[str, Any]]:
    """Generate every item whose ``record(item)["index"]`` is not saved yet; return all saved records by index.

    ``record(item)`` gives the metadata saved with a response (must hold ``index``); ``make_request`` builds the
    prompt once the backend (and so its processor) exists; ``generation`` gives the batch size and token budget.
    """
    batch_size, max_new_tokens = generation.batch_size, generation.max_new_tokens

    run_dir = Path(run_dir)
    check_settings(run_dir, settings)
    path = run_dir / PREDICTIONS_FILE
    done = read_predictions(path)
    pending = [item for item in items if record(item)["index"] not in done]
    if not pending:
        return done
    backend = make_backend()
    with PredictionWriter(path) as writer, tqdm(total=len(items), initial=len(items) - len(pending), desc=desc) as bar:
        for start in range(0, len(pending), batch_size):
            chunk = pending[start : start + batch_size]
            generations = backend.generate([make_request(backend, item) for item in chunk], max_new_tokens)
            rows = [
                {**record(item), "response": g.text, "num_tokens": g.num_tokens, "finished": g.finished}
                for item, g in zip(chunk, generations, strict=True)
            ]
            writer.write(rows)
            done.update((row["index"], row) for row in rows)
            bar.update(len(chunk))
    return read_predictions(path)
