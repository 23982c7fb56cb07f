"""Aggregate per-example scores into the paper's numbers, print them as Markdown tables, and save a scored run.

Box metrics follow Table 10: mean IoU over *all* examples (a response without a usable box has IoU 0 and stays in
the denominator), ACC@0.5 and ACC@0.75 as the share with IoU >= the threshold. metrics.json keeps raw fractions;
tables show percentages with one decimal.

>>> rows = [{"iou": 1.0, "acc50": 1.0, "acc75": 1.0, "parse_fail": 0.0, "format": 1.0, "size_bin": "tiny"},
...         {"iou": 0.0, "acc50": 0.0, "acc75": 0.0, "parse_fail": 1.0, "format": 0.0, "size_bin": "small"}]
>>> m = box_metrics(rows)
>>> m["n"], m["mean_iou"], m["acc50"], m["parse_fail_rate"], m["by_size_bin"]["tiny"]["mean_iou"]
(2, 0.5, 0.5, 0.5, 1.0)
"""

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from locus_data.config import SIZE_BINS
from locus_data.schema import SIZE_BIN


SCORES_FILE, METRICS_FILE, TABLE_FILE = "scores.jsonl", "metrics.json", "table.md"
BOX_COLUMNS = (("mean_iou", "Mean IoU"), ("acc50", "ACC@0.5"), ("acc75", "ACC@0.75"))


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def _box_summary(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    summary = {
        "n": len(rows),
        "mean_iou": _mean([r["iou"] for r in rows]),
        "acc50": _mean([r["acc50"] for r in rows]),
        "acc75": _mean([r["acc75"] for r in rows]),
        "parse_fail_rate": _mean([r["parse_fail"] for r in rows]),
    }
    if all("format" in r for r in rows):
        summary["format_rate"] = _mean([r["format"] for r in rows])
    if all("finished" in r for r in rows):
        summary["truncated_rate"] = _mean([0.0 if r["finished"] else 1.0 for r in rows])
    return summary


def box_metrics(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Overall and per-``size_bin`` box metrics from per-example ``iou/acc50/acc75/parse_fail`` rows."""
    by_bin: dict[str, list] = defaultdict(list)
    for row in rows:
        if row.get(SIZE_BIN) is not None:
            by_bin[row[SIZE_BIN]].append(row)
    order = [b for b in SIZE_BINS if b in by_bin] + sorted(b for b in by_bin if b not in SIZE_BINS)
    return {**_box_summary(rows), "by_size_bin": {b: _box_summary(by_bin[b]) for b in order}}


def percent(value: float | None) -> str:
    """One-decimal percentage, or an en dash for a missing value.

    >>> percent(0.12345), percent(None)
    ('12.3', '–')
    """
    if value is None or value != value:  # NaN: an empty bin
        return "–"
    return f"{100 * value:.1f}"


def table10(results: Mapping[str, Mapping[str, Any]]) -> str:
    """Markdown in Table 10's layout: one row per model, overall columns then the same per size bin.

    >>> print(table10({"base": {"mean_iou": 0.1, "acc50": 0.05, "acc75": 0.01, "by_size_bin": {}}}))
    | Model | Mean IoU | ACC@0.5 | ACC@0.75 |
    |---|---|---|---|
    | base | 10.0 | 5.0 | 1.0 |
    """
    bins: list[str] = []
    for metrics in results.values():
        bins += [b for b in metrics.get("by_size_bin", {}) if b not in bins]
    header = ["Model"] + [name for _, name in BOX_COLUMNS]
    header += [f"{b.capitalize()} {name}" for b in bins for _, name in BOX_COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, metrics in results.items():
        cells = [label] + [percent(metrics.get(key)) for key, _ in BOX_COLUMNS]
        for b in bins:
            per_bin = metrics.get("by_size_bin", {}).get(b, {})
            cells += [percent(per_bin.get(key)) for key, _ in BOX_COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def accuracy_by(rows: Sequence[Mapping[str, Any]], key: str) -> dict[str, float]:
    """Mean of ``correct`` per value of ``rows[i][key]`` (sorted by value)."""
    groups: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        groups[str(row[key])].append(float(row["correct"]))
    return {group: _mean(values) for group, values in sorted(groups.items())}


def mcq_metrics(rows: Sequence[Mapping[str, Any]], cycles: bool = False) -> dict[str, Any]:
    """Multiple-choice accuracy, overall and per ``category``.

    With ``cycles=True`` (HR-Bench) every number is first computed within each ``cycle`` and then averaged over
    cycles, as the benchmark's authors report it; otherwise it is a plain mean over questions.
    """
    if not cycles:
        return {
            "n": len(rows),
            "accuracy": _mean([float(r["correct"]) for r in rows]),
            "by_category": accuracy_by(rows, "category"),
            "unanswered_rate": _mean([float(r["choice"] is None) for r in rows]),
        }
    per_cycle: dict[str, list] = defaultdict(list)
    for row in rows:
        per_cycle[str(row["cycle"])].append(row)
    cycle_results = {c: mcq_metrics(per_cycle[c]) for c in sorted(per_cycle)}
    categories = sorted({cat for r in cycle_results.values() for cat in r["by_category"]})
    return {
        "n": len(rows),
        "accuracy": _mean([r["accuracy"] for r in cycle_results.values()]),
        "by_category": {
            cat: _mean([r["by_category"][cat] for r in cycle_results.values() if cat in r["by_category"]])
            for cat in categories
        },
        "unanswered_rate": _mean([float(r["choice"] is None) for r in rows]),
        "by_cycle": {c: r["accuracy"] for c, r in cycle_results.items()},
    }


def mcq_table(label: str, metrics: Mapping[str, Any]) -> str:
    """One-row Markdown table: overall accuracy then each category, in percent."""
    categories = list(metrics.get("by_category", {}))
    header = ["Model", "Overall", *categories]
    cells = [label, percent(metrics["accuracy"]), *(percent(metrics["by_category"][c]) for c in categories)]
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header), "| " + " | ".join(cells) + " |"])


def save_report(
    out_dir: str | Path, rows: Sequence[Mapping[str, Any]], metrics: Mapping[str, Any], table: str
) -> None:
    """Write a scored run: ``scores.jsonl`` (one row per example), ``metrics.json`` and ``table.md``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / SCORES_FILE).open("w", encoding="utf-8") as f:
        f.writelines(json.dumps(row) + "\n" for row in rows)
    (out_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    (out_dir / TABLE_FILE).write_text(table + "\n", encoding="utf-8")
