"""Scoring saved responses: the picked option of a multiple-choice item, the IoU of a grounding box."""

from typing import Any

from locus_eval.benchmarks.items import Item
from locus_reward import boxes, frames
from locus_reward.answers import extract_choice, final_answer
from locus_reward.parsing import parse_box


def score_mcq(items: list[Item], predictions: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for item in items:
        response = predictions[item.index]["response"]
        choice = extract_choice(response, item.options)
        rows.append(
            {
                "index": item.index,
                "name": item.name,
                "category": item.category,
                "cycle": item.cycle,
                "answer": item.answer,
                "choice": choice,
                "correct": choice == item.answer,
            }
        )
    return rows


def score_grounding(
    items: list[Item],
    predictions: dict[int, dict[str, Any]],
    sizes: dict[int, tuple[int, int]],
    coord_frame: str,
    limits: dict[str, int | None],
) -> list[dict[str, Any]]:
    """IoU of each predicted box against its GT, read with the reward's parser and frame code."""
    rows = []
    for item in items:
        width, height = sizes[item.index]
        box = parse_box(final_answer(predictions[item.index]["response"]))
        iou = 0.0
        if box is not None:
            stored = boxes.clip_box(frames.to_stored(box, width, height, coord_frame, **limits), width, height)
            iou = boxes.iou(stored, tuple(item.boxes[0]))
        rows.append(
            {
                "index": item.index,
                "name": item.name,
                "category": item.category,
                "iou": iou,
                "acc50": float(iou >= 0.5),
                "acc50_strict": float(iou > 0.5),  # VLM-R1 and others count IoU > 0.5
                "parse_fail": float(box is None),
            }
        )
    return rows


def grounding_metrics(rows: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(rows)
    mean = lambda key: sum(r[key] for r in rows) / n if n else float("nan")  # noqa: E731
    return {
        "n": n,
        "acc50": mean("acc50"),
        "acc50_strict": mean("acc50_strict"),
        "mean_iou": mean("iou"),
        "parse_fail_rate": mean("parse_fail"),
    }
