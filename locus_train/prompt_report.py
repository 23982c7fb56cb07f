"""The prompt-length report: what ``locus-data measure-prompts`` measured, and with which settings.

Written next to the data (``prompt_lengths.json``) by :mod:`locus_train.prompt_lengths` and read back by the
preflight, which trusts it only while it was measured with the recipe's settings (:meth:`PromptLengthReport.stale`).
The JSON holds the fields below, in this order; ``splits`` maps each split to its :class:`SplitLengths`.

>>> split = SplitLengths.of("/data/train.parquet", [5, 12, 7, 11], max_prompt_length=10)
>>> split.max, split.overlong, split.overlong_rows
(12, 2, [1, 3])
"""

import dataclasses
import hashlib
import json
import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from locus_data.errors import UserError


REPORT_NAME = "prompt_lengths.json"
"""the report's one name: measure-prompts writes it beside the data it measured, the launcher's preflight reads it
there (it records the settings it was measured with, so a report of another recipe is stale, never trusted)"""
REPORT_VERSION = 1
MAX_LISTED_ROWS = 20  # overlong row indices kept in the report (the filtered copy drops all of them)


def report_path(data_dir: str | Path) -> Path:
    """Where the report of the dataset in ``data_dir`` lives (:data:`REPORT_NAME` inside it)."""
    return Path(data_dir) / REPORT_NAME


def summarize(lengths: list[int], max_prompt_length: int) -> dict[str, Any]:
    """Distribution of one split's prompt lengths and the rows over the budget (a :class:`SplitLengths` but its
    file)."""
    ordered = sorted(lengths)

    def quantile(q: float) -> int:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0

    overlong = [i for i, n in enumerate(lengths) if n > max_prompt_length]
    return {
        "rows": len(lengths),
        "min": ordered[0] if ordered else 0,
        "mean": round(statistics.fmean(ordered), 1) if ordered else 0.0,
        "p50": quantile(0.5),
        "p99": quantile(0.99),
        "max": ordered[-1] if ordered else 0,
        "overlong": len(overlong),
        "overlong_rows": overlong[:MAX_LISTED_ROWS],
    }


@dataclass
class SplitLengths:
    """The prompt lengths of one split."""

    file: str
    """the measured parquet file (absolute)"""
    rows: int
    """rows measured"""
    min: int
    """shortest prompt, in tokens"""
    mean: float
    """mean prompt length (one decimal)"""
    p50: int
    """median prompt length"""
    p99: int
    """99th percentile"""
    max: int
    """longest prompt: what ``data.max_prompt_length`` must hold"""
    overlong: int
    """rows over the budget"""
    overlong_rows: list[int]
    """the first overlong row indices (at most 20)"""

    @classmethod
    def of(cls, file: str | Path, lengths: list[int], max_prompt_length: int) -> "SplitLengths":
        return cls(str(file), **summarize(lengths, max_prompt_length))


@dataclass
class PromptLengthReport:
    """Every split's prompt lengths, and the settings they were measured with."""

    model: str
    """the checkpoint (or hub id) whose processor counted"""
    processor_class: str
    """its processor class"""
    format_prompt: str | None
    """the format prompt file, or None"""
    format_prompt_sha256: str | None
    """sha256 of the format prompt's text (a prompt edited in place is another prompt)"""
    min_pixels: int | None
    """EasyR1 ``data.min_pixels`` the images were resized with"""
    max_pixels: int | None
    """EasyR1 ``data.max_pixels``"""
    max_prompt_length: int
    """the budget the overlong counts are against"""
    limit: int | None
    """rows measured per split (None: all of them)"""
    method: str
    """arithmetic (from stored sizes) or processor (every row through the processor)"""
    splits: dict[str, SplitLengths] = field(default_factory=dict)
    """split -> its lengths"""
    filtered: str | None = None
    """folder of the copies without overlong rows, when written"""
    version: int = REPORT_VERSION
    """the report layout"""

    @property
    def longest(self) -> int:
        """The longest prompt of any split."""
        return max(split.max for split in self.splits.values())

    def stale(self, **expected: Any) -> list[str]:
        """The settings among ``expected`` that the report was measured with other values of."""
        return [name for name, value in expected.items() if getattr(self, name) != value]

    def to_json(self) -> str:
        # version first, as the files have always been written
        body = dataclasses.asdict(self)
        return json.dumps({"version": body.pop("version"), **body}, indent=2) + "\n"

    def write(self, path: Path) -> None:
        """Write the JSON atomically (a reader never sees half a report)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(self.to_json(), encoding="utf-8")
        os.replace(tmp, path)

    @classmethod
    def read(cls, path: Path) -> "PromptLengthReport":
        """The report in ``path``; UserError for a file that is not one (of this version)."""
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
            if body.get("version") != REPORT_VERSION:
                raise ValueError(f"version {body.get('version')!r}, expected {REPORT_VERSION}")
            splits = {name: SplitLengths(**split) for name, split in body.pop("splits").items()}
            return cls(**body, splits=splits)
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as err:
            raise UserError(f"{path} is not a prompt-length report ({err}); delete it and measure again") from None


def sha256(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode("utf-8")).hexdigest()
