"""Figures: training curves from EasyR1's file logger (Fig. 9) and Attention-in-Box curves and heatmaps (Fig. 4/5/8).

matplotlib is imported inside each function (Agg backend, no display needed).
"""

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from locus_data.errors import UserError
from locus_data.outputs import atomic_path


# EasyR1's FileLogger writes {"step": s, **unflatten_dict(metrics)}: "reward/iou" becomes {"reward": {"iou": ...}}.
# Training rows carry reward/<key>; validation rows carry val/<key>_reward (the reward's keys, averaged).
PANELS = (
    ("Reward (overall)", "reward/overall", "val/overall_reward"),
    ("IoU", "reward/iou", "val/iou_reward"),
    ("ACC@0.5", "reward/acc50", "val/acc50_reward"),
    ("Format", "reward/format", "val/format_reward"),
    # LFPC's training dynamics (Figs. 5-6), logged by its reward and the crop-tool rollout (docs/lfpc_rollout.md)
    ("Accuracy", "reward/accuracy", "val/accuracy_reward"),
    ("Tool calls / trajectory", "reward/tool_calls", "val/tool_calls_reward"),
    ("Turns", "reward/turns", "val/turns_reward"),
    ("Hit max turns", "reward/rollout_max_turns", "val/rollout_max_turns_reward"),
    ("Crop overlap", "reward/overlap", "val/overlap_reward"),
    ("BBox ratio", "reward/bbox_ratio", "val/bbox_ratio_reward"),
    ("Crop visual tokens", "reward/rollout_crop_tokens", "val/rollout_crop_tokens_reward"),
)
"""(title, training key, validation key) of every panel; a run's figure has the panels its log holds"""
UNBOUNDED = {"Reward (overall)", "Tool calls / trajectory", "Turns", "Crop visual tokens"}
"""panels that are not fractions in [0, 1] (the others share that axis, so they compare at a glance)"""
COLUMNS = 4
COLORS = {"train": "#1f77b4", "val": "#d62728"}
MODEL_COLORS = ("#1f77b4", "#d62728")


def flatten(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Undo EasyR1's ``unflatten_dict``.

    >>> flatten({"step": 3, "reward": {"iou": 0.5}, "val": {"iou_reward": 0.4}})
    {'step': 3, 'reward/iou': 0.5, 'val/iou_reward': 0.4}
    """
    flat: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}/"))
        else:
            flat[name] = value
    return flat


def read_experiment_log(path: str | Path) -> list[dict[str, Any]]:
    """Flattened records of an ``experiment_log.jsonl`` (a torn last line from a killed run is skipped)."""
    records = []
    lines = _read_text(path, "an EasyR1 experiment_log.jsonl").splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(flatten(json.loads(line)))
        except ValueError as err:
            if number != len(lines):
                raise UserError(f"{path}:{number}: not a JSON line ({err})") from None
    return records


def _read_text(path: str | Path, expected: str) -> str:
    """A text file's content; UserError naming it (and what was expected) when it is binary."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path} is not a text file; expected {expected}") from None


def _read_json(path: str | Path, expected: str) -> Any:
    try:
        return json.loads(_read_text(path, expected))
    except ValueError as err:
        raise UserError(f"{path} is not valid JSON ({err}); expected {expected}") from None


def read_trl_state(path: str | Path) -> list[dict[str, Any]]:
    """TRL's ``trainer_state.json`` log history as EasyR1-style records (``locus-train trl`` writes one per run).

    The LOCUS reward logs ``cue_search/<key>`` per training step and ``eval_cue_search/<key>`` per evaluation; they
    become ``reward/<key>`` and ``val/<key>_reward``, so one set of panels serves both trainers.

    >>> import json, tempfile
    >>> state = {"log_history": [{"step": 1, "cue_search/iou": 0.2}, {"step": 2, "eval_cue_search/iou": 0.3}]}
    >>> with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
    ...     json.dump(state, f)
    >>> read_trl_state(f.name)
    [{'step': 1, 'reward/iou': 0.2}, {'step': 2, 'val/iou_reward': 0.3}]
    """
    from locus_train.trl.rewards import METRIC_PREFIX  # torch-free: the metric names' one home

    train, val = f"{METRIC_PREFIX}/", f"eval_{METRIC_PREFIX}/"
    records = []
    for entry in _read_json(path, "TRL's trainer_state.json").get("log_history", []):
        record: dict[str, Any] = {"step": entry.get("step")}
        for key, value in entry.items():
            if key.startswith(train):
                record[f"reward/{key[len(train) :]}"] = value
            elif key.startswith(val):
                record[f"val/{key[len(val) :]}_reward"] = value
        if len(record) > 1 and record["step"] is not None:
            records.append(record)
    return records


def series(records: list[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    points = [(r["step"], float(r[key])) for r in records if isinstance(r.get(key), (int, float))]
    points.sort()
    return [p[0] for p in points], [p[1] for p in points]


def smooth(values: Sequence[float], weight: float) -> list[float]:
    """Exponential moving average with bias correction (TensorBoard-style smoothing).

    >>> smooth([1.0, 1.0, 1.0], 0.9)
    [1.0, 1.0, 1.0]
    """
    out, avg = [], 0.0
    for i, value in enumerate(values, start=1):
        avg = weight * avg + (1 - weight) * value
        out.append(avg / (1 - weight**i) if weight > 0 else value)
    return out


def training_panels(records: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """The :data:`PANELS` a run's records hold (LOCUS: reward, IoU, ACC@0.5, format; LFPC adds its dynamics).

    >>> [title for title, _, _ in training_panels([{"step": 1, "reward/overall": 1.0, "reward/tool_calls": 2.0}])]
    ['Reward (overall)', 'Tool calls / trajectory']
    """
    return [panel for panel in PANELS if series(records, panel[1])[0] or series(records, panel[2])[0]]


def plot_training(run_dir: str | Path, out: str | Path | None = None, ema: float = 0.9) -> Path:
    """Reward, IoU, ACC@0.5 and format over steps (train smoothed, raw faint; validation as markers), and LFPC's
    training dynamics when logged: accuracy, tool calls per trajectory, turns, share that hit the turn limit, crop
    overlap, bbox ratio, crop visual tokens (a grid of four columns)."""
    import matplotlib  # plotting only

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # plotting only

    run_dir = Path(run_dir)
    log = run_dir if run_dir.is_file() else run_dir / "experiment_log.jsonl"
    if not log.is_file() and (run_dir / "trainer_state.json").is_file():
        log = run_dir / "trainer_state.json"  # a `locus-train trl` run
    if not log.is_file():
        raise FileNotFoundError(f"no experiment_log.jsonl at {log} (EasyR1 writes it with trainer.logger=[file])")
    records = read_trl_state(log) if log.name == "trainer_state.json" else read_experiment_log(log)
    panels = training_panels(records)
    if not panels:
        raise ValueError(f"{log} has no reward/* or val/*_reward metrics")
    columns = min(COLUMNS, len(panels))
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.4 * rows), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax, (title, train_key, val_key) in zip(axes.flat, panels):
        steps, values = series(records, train_key)
        if steps:
            ax.plot(steps, values, color=COLORS["train"], alpha=0.25, linewidth=1)
            ax.plot(steps, smooth(values, ema), color=COLORS["train"], linewidth=2, label="train")
        steps, values = series(records, val_key)
        if steps:
            ax.plot(steps, values, color=COLORS["val"], marker="o", markersize=4, linewidth=1.5, label="validation")
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.spines[["top", "right"]].set_visible(False)
        if title not in UNBOUNDED:
            ax.set_ylim(-0.02, 1.02)  # IoU, accuracy, format, overlap, ratios are fractions: keep panels comparable
    axes[0][0].legend(frameon=False, loc="lower right")
    fig.suptitle(log.parent.name, fontsize=11)
    fig.tight_layout()
    out = Path(out) if out else log.parent / "training_curves.png"
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=150, format=out.suffix.lstrip(".") or "png")
    plt.close(fig)
    return out


AIB_SUMMARY_KEYS = ("aib_per_layer", "mean_aib", "peak_in_box")
"""what plot-aib reads from an aib run's summary.json"""


def _load_aib_run(run: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    if run.is_file():
        raise UserError(f"{run} is a file; give the `locus-eval aib --out` folder that holds it ({run.parent})")
    if not (run / "summary.json").is_file():
        raise UserError(f"{run} is not a `locus-eval aib` output (no summary.json); run locus-eval aib --out {run}")
    summary = _read_json(run / "summary.json", "the summary.json of `locus-eval aib`")
    missing = [key for key in AIB_SUMMARY_KEYS if not isinstance(summary, dict) or key not in summary]
    if missing:
        raise UserError(f"{run}/summary.json lacks {', '.join(missing)}; rerun locus-eval aib")
    maps = {}
    for file in sorted((run / "maps").glob("*.npz"), key=lambda p: int(p.stem)):
        with np.load(file) as data:
            maps[file.stem] = {key: data[key] for key in data.files}
    return summary, maps


def plot_aib_runs(
    runs: Sequence[str | Path], out_dir: str | Path, labels: Sequence[str] | None = None, num_examples: int = 4
) -> list[Path]:
    """``aib_layers.png`` (per-layer AIB, one curve per run) and ``aib_heatmaps.png`` (runs side by side)."""
    import matplotlib  # plotting only

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # plotting only
    from matplotlib.patches import Rectangle  # plotting only

    runs = [Path(r) for r in runs]
    if not 1 <= len(runs) <= 2:
        raise ValueError("plot-aib compares one or two aib runs")
    if labels and len(labels) != len(runs):
        raise UserError(f"--labels names {len(labels)} run(s) but {len(runs)} run(s) were given; one label per run")
    labels = list(labels) if labels else [r.name for r in runs]
    loaded = [_load_aib_run(r) for r in runs]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []

    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for (summary, _), label, color in zip(loaded, labels, MODEL_COLORS):
        layers = summary["aib_per_layer"]
        ax.plot(range(1, len(layers) + 1), layers, marker="o", markersize=3, color=color,
                label=f"{label} (mean AIB {summary['mean_aib']:.3f}, PiB {summary['peak_in_box']:.2f})")  # fmt: skip
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("decoder layer")
    ax.set_ylabel("attention in box")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(frameon=False, fontsize=8)
    ax.set_title("Attention-in-Box by layer")
    fig.tight_layout()
    written.append(out_dir / "aib_layers.png")
    fig.savefig(written[-1], dpi=150)
    plt.close(fig)

    shared = [k for k in loaded[0][1] if all(k in maps for _, maps in loaded)][:num_examples]
    if not shared:
        return written
    fig, axes = plt.subplots(len(shared), len(runs), figsize=(4.2 * len(runs), 3.4 * len(shared)), squeeze=False)
    for row, key in enumerate(shared):
        # one colour scale per example across models, so brighter means more attention in both panels
        vmax = max(float(maps[key]["map"].max()) for _, maps in loaded)
        for col, ((_, maps), label) in enumerate(zip(loaded, labels)):
            ax, entry = axes[row][col], maps[key]
            image = entry["image"]
            height, width = image.shape[:2]
            # the photo in grey, so the only colour on the panel is attention
            ax.imshow(image.mean(-1), cmap="gray", vmin=0, vmax=255)
            heat = ax.imshow(entry["map"], cmap="inferno", alpha=0.6, vmin=0, vmax=vmax,
                             extent=(0, width, height, 0), interpolation="nearest")  # fmt: skip
            for x1, y1, x2, y2 in entry["boxes"]:
                ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor="#00e5ff", linewidth=2))
            in_box = float(entry["map"][entry["mask"]].sum() / max(float(entry["map"].sum()), 1e-12))
            ax.set_title(f"{label} — {entry['name']} (AIB {in_box:.2f})", fontsize=9)
            ax.axis("off")
        fig.colorbar(heat, ax=list(axes[row]), fraction=0.03, pad=0.02, label="attention share")
    written.append(out_dir / "aib_heatmaps.png")
    fig.savefig(written[-1], dpi=130, bbox_inches="tight")
    plt.close(fig)
    return written
