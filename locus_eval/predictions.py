"""Saved generations: one JSON object per line, appended and flushed per batch, so a killed run resumes.

A run directory holds ``predictions.jsonl`` (``{"index": i, "response": "<raw text>", ...}``, one line per example,
in completion order) and ``generation.json`` (the settings that produced it). Raw responses are saved before any
parsing, untruncated, so scoring can be redone without a model.

A run killed while writing leaves a last line without its newline. Reading keeps it only if it is complete JSON;
reopening for append cuts it off, so the next line never glues onto a fragment. A broken line anywhere else is real
corruption and raises.
"""

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any


PREDICTIONS_FILE = "predictions.jsonl"
SETTINGS_FILE = "generation.json"


def read_predictions(path: str | Path) -> dict[int, dict[str, Any]]:
    """``{index: record}`` from a predictions file; a torn last line is ignored, duplicates raise."""
    path = Path(path)
    records: dict[int, dict[str, Any]] = {}
    if not path.is_file():
        return records
    data = path.read_bytes()
    lines = data.split(b"\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        last = number == len(lines)  # no newline after it: possibly cut off mid-write
        try:
            record = json.loads(line)
        except ValueError as err:
            if last:
                break
            raise ValueError(f"{path}:{number}: not a JSON line ({err}); the file is corrupt") from err
        if not isinstance(record, dict) or not isinstance(record.get("index"), int):
            raise ValueError(f"{path}:{number}: expected an object with an integer 'index'")
        if record["index"] in records:
            raise ValueError(f"{path}:{number}: index {record['index']} appears twice")
        records[record["index"]] = record
    return records


def repair_torn_tail(path: str | Path) -> bool:
    """Cut an unterminated, unparsable last line off ``path`` (True if something was cut)."""
    path = Path(path)
    if not path.is_file():
        return False
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return False
    cut = data.rfind(b"\n") + 1
    try:
        json.loads(data[cut:])
    except ValueError:
        with path.open("r+b") as f:
            f.truncate(cut)
        return True
    with path.open("ab") as f:  # complete record, only the newline was lost
        f.write(b"\n")
    return False


class PredictionWriter:
    """Appends records to a predictions file, flushing and fsyncing after each batch."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        repair_torn_tail(self.path)
        self._file = self.path.open("a", encoding="utf-8")

    def write(self, records: Iterable[dict[str, Any]]) -> None:
        for record in records:
            # ensure_ascii=False keeps the raw text readable; json escapes newlines, so one record is one line
            self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "PredictionWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_settings(run_dir: str | Path, settings: dict[str, Any]) -> None:
    """Write ``generation.json``, or refuse (ValueError) when the directory was made with other settings."""
    file = Path(run_dir) / SETTINGS_FILE
    settings = json.loads(json.dumps(settings))  # normalize tuples and paths the way they will be read back
    if file.is_file():
        saved = json.loads(file.read_text(encoding="utf-8"))
        changed = sorted(k for k in saved.keys() | settings.keys() if saved.get(k) != settings.get(k))
        if changed:
            details = "; ".join(f"{k}: saved {saved.get(k)!r}, now {settings.get(k)!r}" for k in changed)
            raise ValueError(
                f"{file} was written with other generation settings ({details}). Use a new --out directory, "
                "or delete it to start over."
            )
        return
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")


def load_settings(run_dir: str | Path) -> dict[str, Any] | None:
    """The saved ``generation.json`` of a run directory, or None."""
    file = Path(run_dir) / SETTINGS_FILE
    return json.loads(file.read_text(encoding="utf-8")) if file.is_file() else None


def run_manifest(task: str, model: str | Path, data: str | Path, backend: str, generation: Any, **extra: Any) -> dict:
    """The settings a run is saved with in ``generation.json`` (what :func:`check_settings` compares on resume).

    ``generation`` is the run's :class:`locus_eval.runner.GenerationConfig`; ``extra`` adds task-specific keys.
    """
    return {
        "task": task,
        "model": str(Path(model).resolve()),
        "data": str(Path(data).resolve()),
        "backend": backend,
        **extra,
        "max_new_tokens": generation.max_new_tokens,
        "min_pixels": generation.pixels.min_pixels,
        "max_pixels": generation.pixels.max_pixels,
        "decoding": "greedy",
    }
