"""Transfer benchmarks scored by LOCUS itself: V*Bench, HR-Bench 4K/8K, RefCOCO/+/g grounding (ACC@0.5).

Inference is ordinary full-image inference (one image, one question); the data pixel limits are the same as in
training. Layouts read from local disk:

* **V\\*Bench** (``craigwu/vstar_bench``): a folder with ``direct_attributes/`` and ``relative_position/``, each
  holding ``<name>.jpg`` + ``<name>.json`` (``question``, ``options``, ``target_object``, ``bbox`` as COCO
  ``[x, y, w, h]`` per target). The raw annotations list the correct option first (the original evaluation scores
  by likelihood), so options are shuffled with a fixed seed per question.
* **HR-Bench** (``hr_bench_4k.tsv`` / ``hr_bench_8k.tsv``): tab-separated, columns ``index, question, answer,
  category, A, B, C, D, image`` (base64) and ``cycle_category``. Accuracy is computed within each cycle, then
  averaged over cycles.
* **RefCOCO/+/g**: the lmms-eval parquet (``lmms-lab/RefCOCO*``: ``image`` struct, ``bbox`` COCO ``[x, y, w, h]``,
  ``answer`` = list of referring expressions, the first is used) or a jsonl with ``{"image": path relative to the
  file, "bbox": [x, y, w, h], "refexp": str}``. Boxes are read with the reward's parser and mapped with the reward's
  frame code: Qwen2.5-VL pixels of the seen image, Qwen3-VL 0..1000. No "best of two readings".
"""

import base64
import csv
import json
import random
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from locus_data.images import open_image
from locus_eval import backends
from locus_eval.backends import GenerationConfig, Request, chat_prompt, processor_pixel_limits
from locus_eval.metrics import mcq_metrics, mcq_table, percent, save_report
from locus_eval.predictions import run_manifest
from locus_eval.runner import generate_missing
from locus_reward import boxes, frames
from locus_reward.parsing import parse_box, parse_response
from locus_train.images import process_image
from locus_train.processor import load_processor


LETTERS = "ABCDEFGH"
MCQ_INSTRUCTION = "Answer with the option's letter from the given choices directly."
GROUNDING_PROMPT = 'Locate "{refexp}" in the image and output its bounding box [x1, y1, x2, y2] in JSON format.'


@dataclass
class Item:
    """One benchmark question on one image."""

    index: int
    """position in the loaded benchmark; predictions refer to it"""
    image: Any
    """path, or encoded image bytes"""
    question: str
    """question text (MCQ) or referring expression (grounding)"""
    options: list[str] = field(default_factory=list)
    """MCQ options in the order shown to the model"""
    answer: str | None = None
    """correct option letter (MCQ)"""
    category: str = ""
    """benchmark sub-task, reported separately"""
    cycle: str = ""
    """HR-Bench cycle; accuracy is averaged over cycles"""
    boxes: list[list[float]] = field(default_factory=list)
    """GT boxes ``[x1, y1, x2, y2]`` in pixels of the image file (grounding target, suppression, AIB)"""
    name: str = ""
    """file stem or id, for reading predictions by eye"""


def xywh_to_xyxy(box: list[float]) -> list[float]:
    """COCO ``[x, y, w, h]`` to corners.

    >>> xywh_to_xyxy([10, 20, 30, 40])
    [10.0, 20.0, 40.0, 60.0]
    """
    x, y, w, h = (float(v) for v in box)
    return [x, y, x + w, y + h]


def shuffled_options(options: list[str], key: str, seed: int) -> tuple[list[str], str]:
    """Options in a fixed pseudo-random order for ``key``, and the letter the first (correct) one ends up at.

    The order depends only on ``seed`` and the question's own key, so it does not change when other questions are
    added, removed or loaded in another order.
    """
    order = list(range(len(options)))
    random.Random(f"{seed}:{key}").shuffle(order)
    return [options[i] for i in order], LETTERS[order.index(0)]


def load_vstar(root: str | Path, seed: int = 0) -> list[Item]:
    """V*Bench from its raw folder layout (see the module docstring)."""
    root = Path(root)
    files = sorted(root.glob("*/*.json"))
    if not files:
        raise FileNotFoundError(f"no V* annotations (<category>/<name>.json) under {root}")
    items = []
    for file in files:
        ann = json.loads(file.read_text(encoding="utf-8"))
        image = next((p for p in sorted(file.parent.glob(file.stem + ".*")) if p.suffix != ".json"), None)
        if image is None:
            raise FileNotFoundError(f"no image next to {file}")
        category = file.parent.name
        options, answer = shuffled_options(list(ann["options"]), f"{category}/{file.stem}", seed)
        items.append(
            Item(
                index=len(items),
                image=image,
                question=ann["question"],
                options=options,
                answer=answer,
                category=category,
                boxes=[xywh_to_xyxy(b) for b in ann.get("bbox", [])],
                name=f"{category}/{file.stem}",
            )
        )
    return items


def load_hrbench(tsv: str | Path) -> list[Item]:
    """HR-Bench from its TSV (base64 images; see the module docstring)."""
    csv.field_size_limit(sys.maxsize)  # an 8K image in base64 is far above csv's 128 KiB default
    items = []
    with open(tsv, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            options = [row[letter] for letter in LETTERS if row.get(letter) not in (None, "", "nan")]
            items.append(
                Item(
                    index=len(items),
                    image=base64.b64decode(row["image"]),
                    question=row["question"],
                    options=options,
                    answer=row["answer"].strip().upper(),
                    category=row.get("category", ""),
                    cycle=row.get("cycle_category", ""),
                    name=str(row.get("index", len(items))),
                )
            )
    return items


def load_refcoco(path: str | Path) -> list[Item]:
    """RefCOCO-family grounding from the lmms-eval parquet or a simple jsonl (see the module docstring)."""
    path = Path(path)
    if path.suffix == ".parquet":
        rows = pq.read_table(path).to_pylist()
        get_image = lambda row: row["image"]["bytes"]  # noqa: E731
        get_refexp = lambda row: row["answer"][0] if isinstance(row["answer"], list) else row["answer"]  # noqa: E731
    else:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        get_image = lambda row: path.parent / row["image"]  # noqa: E731
        get_refexp = lambda row: row["refexp"]  # noqa: E731
    return [
        Item(
            index=i,
            image=get_image(row),
            question=get_refexp(row),
            boxes=[xywh_to_xyxy(row["bbox"])],
            category=path.stem,
            name=str(row.get("question_id", row.get("file_name", i))),
        )
        for i, row in enumerate(rows)
    ]


def mcq_prompt(item: Item) -> str:
    """Question, lettered options, and the lmms-eval instruction to answer with the letter."""
    lines = [item.question.strip()] + [f"{LETTERS[i]}. {option}" for i, option in enumerate(item.options)]
    return "<image>\n" + "\n".join(lines) + "\n" + MCQ_INSTRUCTION


def final_answer(response: str) -> str:
    """The part of a response that answers: after the last ``</think>``, inside ``<answer>`` when present.

    >>> final_answer("<think>B looks wrong.</think><answer>C</answer>")
    'C'
    >>> final_answer("<think>Maybe B.</think> The answer is C.")
    'The answer is C.'
    """
    # the reward's reader finds the answer block (one rule, linear time); prompts without tags answer in plain text
    answer = parse_response(response).answer
    return (answer if answer is not None else response.rsplit("</think>", 1)[-1]).strip()


def extract_choice(response: str, options: list[str]) -> str | None:
    """The option letter a response picks, or None. An ordered cascade; the first rule that decides wins:

    1. the answer is just a letter: ``B``, ``(B)``, ``B.``;
    2. an explicit statement: ``the answer is B``, ``Answer: (B)``, ``option B``;
    3. it starts with a letter and a delimiter: ``B. red``, ``(B) red``, ``B: red``;
    4. exactly one distinct ``(X)`` anywhere;
    5. exactly one option's text appears (case-insensitive, whole words);
    6. exactly one distinct standalone capital letter among the valid ones.

    Option text (5) is tried before bare letters (6) because "A" is also an English article.

    >>> extract_choice("The answer is (C).", ["red", "green", "blue", "white"])
    'C'
    >>> extract_choice("A red car.", ["blue", "red"])  # the article "A" is not a choice; the text "red" is
    'B'
    """
    text = final_answer(response)
    valid = LETTERS[: len(options)]
    letter = f"([{valid}])"
    rules = [
        rf"^\(?{letter}\)?[.:]?$",
        rf"(?i:answer|option|choice)\s*(?i:is)?\s*[:：]?\s*\(?{letter}\)?(?![A-Za-z])",
        rf"^\(?{letter}(?:\)|[.:])",
    ]
    for rule in rules:
        match = re.search(rule, text)
        if match:
            return match.group(1)
    parenthesized = set(re.findall(rf"\({letter}\)", text))
    if len(parenthesized) == 1:
        return parenthesized.pop()
    lowered = text.lower()
    named = [
        LETTERS[i]
        for i, option in enumerate(options)
        if option.strip() and re.search(rf"(?<!\w){re.escape(option.strip().lower())}(?!\w)", lowered)
    ]
    if len(named) == 1:
        return named[0]
    standalone = set(re.findall(rf"(?<![A-Za-z]){letter}(?![A-Za-z])", text))
    if len(standalone) == 1:
        return standalone.pop()
    return None


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


LOADERS = {"vstar": load_vstar, "hrbench": load_hrbench, "refcoco": load_refcoco}


def load(benchmark: str, data: str | Path, seed: int = 0) -> list[Item]:
    """Items of a benchmark by name (``vstar``, ``hrbench``, ``refcoco``)."""
    if benchmark == "vstar":
        return load_vstar(data, seed)
    if benchmark not in LOADERS:
        raise ValueError(f"unknown benchmark {benchmark!r}; expected one of {', '.join(LOADERS)}")
    return LOADERS[benchmark](data)


def run(
    benchmark: str,
    data: str | Path,
    model: str | Path,
    out_dir: str | Path,
    backend: str,
    coord_frame: str,
    generation: GenerationConfig,
    limit: int | None = None,
    seed: int = 0,
    backend_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Generate (resuming) and score one benchmark; writes predictions, scores.jsonl, metrics.json, table.md."""
    items = load(benchmark, data, seed)[:limit]
    processor = load_processor(model)
    proc_min, proc_max = processor_pixel_limits(processor)
    settings = run_manifest(f"bench-{benchmark}", model, data, backend, generation, seed=seed)
    grounding = benchmark == "refcoco"

    def make_request(_backend: Any, item: Item) -> Request:
        problem = "<image>\n" + GROUNDING_PROMPT.format(refexp=item.question) if grounding else mcq_prompt(item)
        image = process_image(item.image, generation.min_pixels, generation.max_pixels)
        return Request(chat_prompt(processor, problem), [image])

    predictions = generate_missing(
        out_dir,
        items,
        settings,
        make_backend=lambda: backends.load_backend(backend, model, limit_images=1, **(backend_kwargs or {})),
        make_request=make_request,
        record=lambda item: {"index": item.index, "name": item.name},
        batch_size=generation.batch_size,
        max_new_tokens=generation.max_new_tokens,
        desc=benchmark,
    )
    label = Path(model).name
    if grounding:
        sizes = {item.index: open_image(item.image).size for item in items}
        limits = {
            "min_pixels": generation.min_pixels,
            "max_pixels": generation.max_pixels,
            "processor_min_pixels": proc_min,
            "processor_max_pixels": proc_max,
        }
        rows = score_grounding(items, predictions, sizes, coord_frame, limits)
        metrics = {**grounding_metrics(rows), "coord_frame": coord_frame, "acc_rule": "iou >= 0.5"}
        table = "\n".join(
            [
                "| Model | ACC@0.5 | ACC@0.5 (IoU > 0.5) | Mean IoU |",
                "|---|---|---|---|",
                f"| {label} | {percent(metrics['acc50'])} | {percent(metrics['acc50_strict'])} "
                f"| {percent(metrics['mean_iou'])} |",
            ]
        )
    else:
        rows = score_mcq(items, predictions)
        metrics = mcq_metrics(rows, cycles=benchmark == "hrbench")
        table = mcq_table(label, metrics)
    save_report(out_dir, rows, metrics, table)
    return metrics
