"""Scores of ``locus-eval agent``: accuracy by each benchmark's published protocol, and how the agent used its crops.

* **Accuracy** is ``locus-eval bench``'s, from the text of the episode's ``<answer>`` block: multiple-choice items
  through :func:`locus_eval.benchmarks.score_mcq` (the option letter the answer names) and
  :func:`locus_eval.metrics.mcq_metrics` -- V* overall and per category (Attr = ``direct_attributes``, Spatial =
  ``relative_position``), HR-Bench within each cycle and then averaged over cycles (FSP = ``single``, FCP =
  ``cross``). Short-answer manifest questions use :func:`locus_reward.answers.is_correct`. An episode without an
  answer is wrong.
* **Crops**, per crop a call cut (a call the tool rejected has none), from ``box_orig`` -- the model's region in
  original pixels, the same in every crop mode: ``iou`` against the best-matching GT box of its question (the
  maximum over that question's boxes), ``overlap`` the share of that box the crop covers, ``bbox_ratio`` its area
  over the image's; means over all crops of the run. HR-Bench publishes no GT boxes, so its crop IoU and overlap are
  not reproducible (None, with a note). Box maths: :mod:`locus_reward.boxes`.
* Per question: ``tool_calls_mean`` (calls that cut a crop), ``invalid_calls_mean`` (rejected calls), ``turns_mean``
  (assistant turns), ``no_answer_rate``, ``seconds_per_question``; ``end_reasons`` as shares.

Rates are fractions in [0, 1] in metrics.json; :func:`agent_table` prints percent.

>>> crop_scores([0, 0, 10, 10], [(5.0, 0.0, 15.0, 10.0), (0.0, 0.0, 40.0, 40.0)], 100, 100)
{'iou': 0.3333333333333333, 'overlap': 0.5, 'bbox_ratio': 0.01}
"""

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from locus_agent.loop import END_REASONS
from locus_eval.benchmarks import Item, score_mcq
from locus_eval.metrics import mcq_metrics, percent
from locus_reward import boxes
from locus_reward.answers import is_correct
from locus_reward.boxes import Box


CATEGORY_NAMES = {"direct_attributes": "Attr", "relative_position": "Spatial", "single": "FSP", "cross": "FCP"}
"""the published column names of the benchmarks' categories"""
NO_BOXES_NOTE = "HR-Bench publishes no GT boxes: its crop IoU and overlap are not reproducible"


def crop_scores(box_orig: Sequence[float], gt_boxes: Sequence[Box], width: int, height: int) -> dict[str, Any]:
    """IoU and overlap of one crop against the best-matching GT box (highest IoU, the first of equals), and its
    share of the image; IoU and overlap are None when the question has no boxes."""
    box = tuple(float(v) for v in box_orig)
    ratio = boxes.area(box) / (width * height)
    if not gt_boxes:
        return {"iou": None, "overlap": None, "bbox_ratio": ratio}
    ious = [boxes.iou(box, gt) for gt in gt_boxes]
    best = max(range(len(ious)), key=ious.__getitem__)
    return {"iou": ious[best], "overlap": boxes.coverage(box, gt_boxes[best]), "bbox_ratio": ratio}


def score_answer(item: Item, prediction: str | None) -> dict[str, Any]:
    """``choice`` (the option letter read, MCQ) and ``correct`` of one episode's answer (None: no answer)."""
    if item.options:
        (row,) = score_mcq([item], {item.index: {"response": prediction or ""}})
        return {"choice": row["choice"], "correct": bool(row["correct"])}
    return {"choice": None, "correct": is_correct(prediction, item.answer)}


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def agent_metrics(benchmark: str, items: Sequence[Item], records: Mapping[int, Mapping[str, Any]]) -> dict[str, Any]:
    """metrics.json of a run: ``records`` are trajectories.jsonl lines by index, one for each of ``items``."""
    rows = []
    for item in items:
        record = records[item.index]
        scored = score_answer(item, record["prediction"])
        rows.append({"index": item.index, "name": item.name, "category": item.category, "cycle": item.cycle,
                     "answer": item.answer, **scored})  # fmt: skip
    if items and all(item.options for item in items):
        metrics = mcq_metrics(rows, cycles=benchmark == "hrbench")
    else:  # short answers (a manifest): a plain mean, per category where the manifest has them
        metrics = {"n": len(rows), "accuracy": _mean([float(row["correct"]) for row in rows])}
        metrics["by_category"] = {
            category: _mean([float(r["correct"]) for r in rows if r["category"] == category])
            for category in sorted({item.category for item in items})
        }
    if not any(item.category for item in items):
        metrics.pop("by_category")  # a manifest without categories: one "" category says nothing
    ordered = [records[item.index] for item in items]
    calls = [call for record in ordered for turn in record["turns"] for call in turn["calls"]]
    crops = [call for call in calls if call["error"] is None]
    scored = [call for call in crops if call.get("iou") is not None]
    reasons = Counter(record["end_reason"] for record in ordered)
    n = len(ordered)
    metrics.update(
        {
            "tool_calls_mean": len(crops) / n if n else None,
            "invalid_calls_mean": (len(calls) - len(crops)) / n if n else None,
            "turns_mean": _mean([len(record["turns"]) for record in ordered]),
            "crop_count": len(crops),
            "crop_iou_mean": _mean([call["iou"] for call in scored]),
            "crop_overlap_mean": _mean([call["overlap"] for call in scored]),
            "crop_count_with_gt": len(scored),
            "bbox_ratio_mean": _mean([call["bbox_ratio"] for call in crops]),
            "crop_visual_tokens_mean": _mean([call["visual_tokens"] for call in crops]),
            "view_visual_tokens_mean": _mean([record["view_tokens"] for record in ordered]),
            "no_answer_rate": _mean([float(record["prediction"] is None) for record in ordered]),
            "end_reasons": {reason: reasons[reason] / n for reason in END_REASONS if reasons[reason]},
            "seconds_per_question": _mean([record["seconds"] for record in ordered]),
        }
    )
    if benchmark == "hrbench":
        metrics["crop_iou_note"] = NO_BOXES_NOTE
    elif not any(item.boxes for item in items):
        metrics["crop_iou_note"] = "no question has GT boxes: crop IoU and overlap are not available"
    return metrics


def _number(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def agent_table(label: str, metrics: Mapping[str, Any]) -> str:
    """One-row Markdown table: accuracy per category then overall (percent), then how the crops were used."""
    categories = list(metrics.get("by_category", {}))
    header = ["Model", *(CATEGORY_NAMES.get(c, c) for c in categories), "Overall", "Tool calls", "Turns",
              "Crop IoU", "Overlap", "BBox ratio", "Crop tokens", "No answer", "s / question"]  # fmt: skip
    cells = [
        label,
        *(percent(metrics["by_category"][c]) for c in categories),
        percent(metrics["accuracy"]),
        _number(metrics["tool_calls_mean"]),
        _number(metrics["turns_mean"]),
        percent(metrics["crop_iou_mean"]),
        percent(metrics["crop_overlap_mean"]),
        percent(metrics["bbox_ratio_mean"]),
        _number(metrics["crop_visual_tokens_mean"], 0),
        percent(metrics["no_answer_rate"]),
        _number(metrics["seconds_per_question"]),
    ]
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header), "| " + " | ".join(cells) + " |"])
