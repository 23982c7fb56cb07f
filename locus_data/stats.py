"""Table-9-style statistics of a built dataset: counts and shares per bin, distributions, skipped inputs.

Computed from the metadata columns of train/val.parquet (images are not read, so this is quick on 100K rows) plus
the build's own counters (skipped inputs by reason, images used), which ``build`` passes in and keeps in
``stats.json`` under ``build``.
"""

import json
from pathlib import Path
from typing import Any

import numpy as np

from locus_data.config import SIZE_BINS, SPLITS, DataConfig, split_path, to_dict
from locus_data.outputs import atomic_write_text
from locus_data.rows import read_batches
from locus_data.schema import AREA_RATIO, CROP_BOX, CUE_HEIGHT, CUE_SCALE, CUE_UPSAMPLED, CUE_WIDTH, IMAGE_ID, SIZE_BIN


QUANTILES = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)
COLUMNS = [IMAGE_ID, SIZE_BIN, AREA_RATIO, CROP_BOX, CUE_WIDTH, CUE_HEIGHT, CUE_SCALE, CUE_UPSAMPLED]


def _quantiles(values: np.ndarray) -> dict[str, float] | None:
    if values.size == 0:
        return None
    qs = np.quantile(values, QUANTILES)
    return {f"p{round(q * 100)}": round(float(v), 6) for q, v in zip(QUANTILES, qs)}


def split_stats(path: Path) -> dict[str, Any]:
    table = next(read_batches(path, COLUMNS, batch_rows=None))
    col = {name: table.column(name).to_pylist() for name in COLUMNS}
    n = table.num_rows
    bins = np.array(col[SIZE_BIN], dtype=object)
    crop = np.array(col[CROP_BOX], dtype=float).reshape(-1, 4)
    crop_w, crop_h = crop[:, 2] - crop[:, 0], crop[:, 3] - crop[:, 1]
    area = np.array(col[AREA_RATIO], dtype=float)
    scale = np.array(col[CUE_SCALE], dtype=float)
    cue_short = np.minimum(np.array(col[CUE_WIDTH]), np.array(col[CUE_HEIGHT])).astype(float)
    result: dict[str, Any] = {
        "rows": n,
        "images": len(set(col[IMAGE_ID])),
        "bins": {},
        CUE_UPSAMPLED: int(sum(col[CUE_UPSAMPLED])),
    }
    for size_bin in SIZE_BINS:
        mask = bins == size_bin
        count = int(mask.sum())
        if count == 0:
            continue
        result["bins"][size_bin] = {
            "count": count,
            "share": round(count / n, 6),
            AREA_RATIO: _quantiles(area[mask]),
            "crop_short_side": _quantiles(np.minimum(crop_w, crop_h)[mask]),
            "crop_long_side": _quantiles(np.maximum(crop_w, crop_h)[mask]),
            CUE_SCALE: _quantiles(scale[mask]),
            "cue_short_side": _quantiles(cue_short[mask]),
        }
    return result


def compute_stats(out: Path, cfg: DataConfig | dict | None, build_info: dict[str, Any] | None) -> dict[str, Any]:
    splits = {s: split_stats(split_path(out, s)) for s in SPLITS if split_path(out, s).is_file()}
    config = to_dict(cfg) if isinstance(cfg, DataConfig) else cfg
    return {"splits": splits, "build": build_info or {}, "config": config or {}}


def write_stats(out: Path, cfg: DataConfig, build_info: dict[str, Any]) -> dict[str, Any]:
    stats = compute_stats(out, cfg, build_info)
    atomic_write_text(out / "stats.json", json.dumps(stats, indent=2) + "\n")
    atomic_write_text(out / "stats.md", to_markdown(stats))
    return stats


def _fmt(q: dict[str, float] | None, pct: bool = False) -> str:
    if q is None:
        return "-"
    f = (lambda v: f"{v * 100:.2f}%") if pct else (lambda v: f"{v:.3g}")
    return f"{f(q['p0'])} / {f(q['p25'])} / {f(q['p50'])} / {f(q['p75'])} / {f(q['p100'])}"


def to_markdown(stats: dict[str, Any]) -> str:
    lines = ["# LOCUS cue-search dataset statistics", ""]
    lines += ["| split | examples | images | " + " | ".join(SIZE_BINS) + " | cues upsampled |", "|---" * 7 + "|"]
    for split, s in stats["splits"].items():
        cells = []
        for b in SIZE_BINS:
            info = s["bins"].get(b)
            cells.append(f"{info['count']} ({info['share'] * 100:.1f}%)" if info else "0")
        lines.append(f"| {split} | {s['rows']} | {s['images']} | " + " | ".join(cells) + f" | {s[CUE_UPSAMPLED]} |")
    lines += ["", "Distributions (min / p25 / median / p75 / max):", ""]
    lines += ["| split | bin | area ratio | crop short side px | crop long side px | cue scale | cue short side px |"]
    lines += ["|---" * 7 + "|"]
    for split, s in stats["splits"].items():
        for b, info in s["bins"].items():
            lines.append(
                f"| {split} | {b} | {_fmt(info[AREA_RATIO], pct=True)} | {_fmt(info['crop_short_side'])} | "
                f"{_fmt(info['crop_long_side'])} | {_fmt(info[CUE_SCALE])} | {_fmt(info['cue_short_side'])} |"
            )
    build = stats.get("build") or {}
    if build:
        lines += ["", "## Inputs", ""]
        used = build.get("images_used", {})
        lines.append(
            f"{build.get('source_images')} images and {build.get('source_annotations')} annotations read; "
            f"{build.get('images_with_candidates')} images offer candidates; {build.get('images_considered')} "
            f"were decoded and considered in walk order; used: {', '.join(f'{k} {v}' for k, v in used.items())}."
        )
        if build.get("clamped_annotations"):
            lines += ["", f"Boxes clamped to the image (partly outside, kept): {build['clamped_annotations']}"]
        for title, key in (
            ("Skipped annotations", "skipped_annotations"),
            ("Skipped while building (images or cues)", "skipped_in_walk"),
            ("Full images re-encoded", "reencoded_full_images"),
        ):
            counts = build.get(key) or {}
            lines += ["", f"{title}:", ""]
            lines += [f"- {reason}: {n}" for reason, n in counts.items()] or ["- none"]
        if build.get("shortfall"):
            lines += ["", f"**Shortfall (allow_shortfall=true):** {'; '.join(build['shortfall'])}"]
    return "\n".join(lines) + "\n"
