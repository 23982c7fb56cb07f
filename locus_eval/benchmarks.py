"""Transfer benchmarks scored by LOCUS itself: V*Bench, HR-Bench 4K/8K, RefCOCO/+/g grounding (ACC@0.5).

Inference is ordinary full-image inference (one image, one question); the data pixel limits are the same as in
training. Layouts read from local disk (``docs/evaluation.md`` sets each next to the published protocol):

* **V\\*Bench** (``craigwu/vstar_bench``), either layout:

  - the per-sample folders ``direct_attributes/`` and ``relative_position/``, each holding ``<name>.jpg`` +
    ``<name>.json`` (``question``, ``options``, ``target_object``, ``bbox`` as COCO ``[x, y, w, h]`` per target).
    The raw annotations list the correct option first (the original evaluation scores by likelihood), so options
    are shuffled with a fixed seed per question;
  - the bench's root ``test_questions.jsonl`` (``image``, ``text`` with ``(A) ...`` options, ``category``,
    ``question_id``, ``label``), which lmms-eval's ``vstar_bench`` and other harnesses read: options stay in the
    file's order. GT boxes come from the per-sample json next to the image when it is there.

  ``--data`` names the folder (folders protocol) or the jsonl file (jsonl protocol); the protocol is recorded.
* **HR-Bench** (``hr_bench_4k.tsv`` / ``hr_bench_8k.tsv``): tab-separated, columns ``index, question, answer,
  category, A, B, C, D, image`` and ``cycle_category``. The image cell is base64 image bytes or, in VLMEvalKit's
  convention (to store each image once, not four times), another row's ``index`` (a cell of at most 64
  characters). Accuracy is computed within each cycle, then averaged over cycles.
* **RefCOCO/+/g**: one sample per referring expression, as lmms-eval's ``refcoco_bbox_rec_*`` (it expands every
  expression of an object into its own sample) and the Qwen-VL / InternVL grounding scripts score them. Layouts:
  the lmms-eval parquet (``lmms-lab-encoder/RefCOCO``, ``.../RefCOCOplus``, ``.../RefCOCOg``: ``image`` struct,
  ``bbox`` COCO ``[x, y, w, h]``, ``answer`` = the object's list of expressions), the per-sentence jsonl of the
  grounding scripts (``{"image", "sent", "bbox": [x1, y1, x2, y2], "width", "height"}``), or LOCUS's own jsonl
  (``{"image", "bbox": [x, y, w, h], "refexp": str or list}``); images in a jsonl are paths relative to the file.
  Boxes are read with the reward's parser and mapped with the reward's frame code: Qwen2.5-VL pixels of the seen
  image, Qwen3-VL 0..1000. No "best of two readings".
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

from locus_data.errors import UserError
from locus_data.images import open_image
from locus_eval import backends
from locus_eval.backends import GenerationConfig, Request
from locus_eval.metrics import mcq_metrics, mcq_table, percent, save_report
from locus_eval.predictions import run_manifest
from locus_eval.runner import generate_missing
from locus_reward import boxes, frames
from locus_reward.answers import LETTERS, MCQ_INSTRUCTION, extract_choice, final_answer, mcq_text
from locus_reward.parsing import parse_box
from locus_train.images import process_image
from locus_train.processor import load_processor, pixel_limits
from locus_train.prompting import chat_prompt


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
    object_id: str = ""
    """RefCOCO: the referred object (several expressions share it)"""


@dataclass
class Loaded:
    """A benchmark's items and the protocol that reading them implies (saved in metrics.json and table.md)."""

    items: list[Item]
    """questions in file order"""
    protocol: dict[str, Any]
    """layout read, what one sample is, option order, split and counts"""


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Objects of a jsonl file; a broken line is a one-line error naming the file and the line."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as err:
            raise UserError(f"{path}:{number}: not a JSON line ({err}); fix or remove that line") from err
        if not isinstance(row, dict):
            raise UserError(f"{path}:{number}: expected a JSON object per line, got {type(row).__name__}")
        rows.append(row)
    return rows


def _field(row: dict[str, Any], key: str, path: Path, where: str) -> Any:
    if key not in row:
        raise UserError(f"{path}:{where}: no {key!r} field (has {', '.join(sorted(row)) or 'none'})")
    return row[key]


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


VSTAR_JSONL = "test_questions.jsonl"


def read_vstar(data: str | Path, seed: int = 0) -> Loaded:
    """V*Bench from its per-sample folders (options shuffled) or its ``test_questions.jsonl`` (file order)."""
    data = Path(data)
    if data.is_file():
        return _read_vstar_jsonl(data)
    files = sorted(data.glob("*/*.json"))
    if not files:
        hint = f"; or pass {data / VSTAR_JSONL}" if (data / VSTAR_JSONL).is_file() else ""
        raise UserError(f"no V* annotations (<category>/<name>.json) under {data}{hint}")
    items = []
    for file in files:
        ann = json.loads(file.read_text(encoding="utf-8"))
        image = next((p for p in sorted(file.parent.glob(file.stem + ".*")) if p.suffix != ".json"), None)
        if image is None:
            raise UserError(f"no image next to {file}")
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
    protocol = {
        "layout": "V* per-sample folders (<category>/<name>.json)",
        "option_order": f"shuffled per question with seed {seed} (the raw annotations list the right option first)",
    }
    return Loaded(items, protocol)


def _vstar_question(text: str, path: Path, where: str) -> tuple[str, list[str]]:
    """Question and options of a ``test_questions.jsonl`` text: ``question\\n(A) x\\n(B) y[\\nAnswer with ...]``."""
    parts = re.split(r"\(([A-H])\)\s*", text.split(MCQ_INSTRUCTION)[0].strip())
    letters, options = parts[1::2], [option.strip() for option in parts[2::2]]
    if not options or letters != list(LETTERS[: len(letters)]):
        raise UserError(f"{path}:{where}: no (A), (B), ... options in the question text")
    return parts[0].strip(), options


def _read_vstar_jsonl(path: Path) -> Loaded:
    items = []
    for number, row in enumerate(read_jsonl(path), start=1):
        where = f"{number}"
        question, options = _vstar_question(_field(row, "text", path, where), path, where)
        label = str(_field(row, "label", path, where)).strip().strip("()").upper()
        if label not in LETTERS[: len(options)]:
            raise UserError(f"{path}:{number}: label {label!r} is not one of the {len(options)} options")
        image = path.parent / _field(row, "image", path, where)
        ann_file = image.with_suffix(".json")
        boxes = json.loads(ann_file.read_text(encoding="utf-8")).get("bbox", []) if ann_file.is_file() else []
        items.append(
            Item(
                index=len(items),
                image=image,
                question=question,
                options=options,
                answer=label,
                category=str(row.get("category", image.parent.name)),
                boxes=[xywh_to_xyxy(b) for b in boxes],
                name=str(row.get("question_id", image.stem)),
            )
        )
    protocol = {
        "layout": f"V* {VSTAR_JSONL}",
        "option_order": "as listed in the file (the order lmms-eval's vstar_bench and other harnesses use)",
    }
    return Loaded(items, protocol)


def load_vstar(root: str | Path, seed: int = 0) -> list[Item]:
    """V*Bench items from either layout (see :func:`read_vstar`)."""
    return read_vstar(root, seed).items


# VLMEvalKit stores each image once: a cell this short holds another row's index instead of base64 bytes
INDEX_REFERENCE_MAX_LEN = 64


def read_hrbench(tsv: str | Path) -> Loaded:
    """HR-Bench from its TSV, resolving index-referenced image cells (see the module docstring)."""
    tsv = Path(tsv)
    csv.field_size_limit(sys.maxsize)  # an 8K image in base64 is far above csv's 128 KiB default
    with tsv.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    for column in ("index", "question", "answer", "image"):
        if rows and column not in rows[0]:
            raise UserError(
                f"{tsv}: no {column!r} column; is this an HR-Bench TSV (hr_bench_4k.tsv / hr_bench_8k.tsv)?"
            )
    cells = {row["index"]: row["image"] for row in rows}
    decoded: dict[str, bytes] = {}
    references = 0

    def decode(cell: str, row: dict[str, str]) -> bytes:
        try:
            data = base64.b64decode(cell, validate=True)
            open_image(data)  # header only: catches text that happens to be valid base64
        except (ValueError, OSError) as err:
            raise UserError(
                f"{tsv}: row index {row['index']}: image cell is neither base64 image bytes nor a row index "
                f"({type(err).__name__}); re-export the TSV with its images"
            ) from err
        return data

    def image_of(row: dict[str, str]) -> bytes:
        nonlocal references
        cell = row["image"].strip()
        is_reference = len(cell) <= INDEX_REFERENCE_MAX_LEN
        if is_reference:
            if len(cells.get(cell, "").strip()) <= INDEX_REFERENCE_MAX_LEN:
                raise UserError(
                    f"{tsv}: row index {row['index']}: image cell {cell!r} is neither base64 image bytes nor the "
                    "index of a row holding an image; re-export the TSV with its images"
                )
            references += 1
        source = cell if is_reference else row["index"]
        if source not in decoded:  # decode each stored image once, however many rows point at it
            decoded[source] = decode(cells[source].strip() if is_reference else cell, row)
        return decoded[source]

    items = []
    for row in rows:
        options = [row[letter] for letter in LETTERS if row.get(letter) not in (None, "", "nan")]
        items.append(
            Item(
                index=len(items),
                image=image_of(row),
                question=row["question"],
                options=options,
                answer=row["answer"].strip().upper(),
                category=row.get("category", ""),
                cycle=row.get("cycle_category", ""),
                name=str(row.get("index", len(items))),
            )
        )
    protocol = {
        "layout": "HR-Bench TSV (VLMEvalKit convention)",
        "images": {"base64": len(items) - references, "index_reference": references},
        "option_order": "as in the TSV (the cycles rotate the options)",
        "scoring": "accuracy within each cycle_category, then averaged over cycles",
    }
    return Loaded(items, protocol)


def load_hrbench(tsv: str | Path) -> list[Item]:
    """HR-Bench items (see :func:`read_hrbench`)."""
    return read_hrbench(tsv).items


# expressions per split, as published for the RefCOCO family (UNC splits; RefCOCOg: UMD) and as
# lmms-eval's refcoco_bbox_rec_* score them (one sample per expression)
PUBLISHED_EXPRESSIONS = {
    ("refcoco", "val"): 10834,
    ("refcoco", "testA"): 5657,
    ("refcoco", "testB"): 5095,
    ("refcoco+", "val"): 10758,
    ("refcoco+", "testA"): 5726,
    ("refcoco+", "testB"): 4889,
    ("refcocog", "val"): 4896,
    ("refcocog", "test"): 9602,
}


def refcoco_split(path: Path) -> tuple[str, str]:
    """``(dataset, split)`` read from a file's path, e.g. ``RefCOCOplus/data/testA-00000.parquet`` -> refcoco+, testA.

    >>> refcoco_split(Path("lmms-lab/RefCOCOg/data/val-00000-of-00001.parquet"))
    ('refcocog', 'val')
    >>> refcoco_split(Path("refcoco+_testB.jsonl"))
    ('refcoco+', 'testB')
    """
    text = str(path).lower()
    dataset = (
        "refcocog"
        if "refcocog" in text
        else "refcoco+"
        if ("refcoco+" in text or "refcocoplus" in text)
        else "refcoco"
    )
    match = re.search(r"(?:^|[^a-z])(val|testa|testb|test)(?:[^a-z]|$)", path.stem.lower())
    split = {"val": "val", "testa": "testA", "testb": "testB", "test": "test"}[match.group(1)] if match else "unknown"
    return dataset, split


def read_refcoco(path: str | Path) -> Loaded:
    """RefCOCO-family grounding, one item per referring expression (see the module docstring)."""
    path = Path(path)
    items: list[Item] = []

    def add(image: Any, expressions: Any, box: list[float], object_id: str) -> None:
        for expression in expressions if isinstance(expressions, list) else [expressions]:
            items.append(
                Item(index=len(items), image=image, question=str(expression), boxes=[box], category=category,
                     name=f"{object_id}:{len(items)}", object_id=object_id)
            )  # fmt: skip

    dataset, split = refcoco_split(path)
    category = f"{dataset}_{split}"
    if path.suffix == ".parquet":
        layout = "lmms-lab parquet (answer = list of expressions per object)"
        for i, row in enumerate(pq.read_table(path).to_pylist()):
            object_id = str(row.get("question_id", row.get("file_name", i)))
            add(row["image"]["bytes"], row["answer"], xywh_to_xyxy(row["bbox"]), object_id)
    elif path.suffix == ".jsonl":
        rows = read_jsonl(path)
        per_sentence = bool(rows) and "sent" in rows[0]
        layout = "per-sentence jsonl (sent, bbox x1y1x2y2)" if per_sentence else "LOCUS jsonl (refexp, bbox xywh)"
        for number, row in enumerate(rows, start=1):
            where = str(number)
            image = path.parent / _field(row, "image", path, where)
            box = [float(v) for v in _field(row, "bbox", path, where)]
            if per_sentence:
                # one line per sentence: lines of the same object share its image and box
                add(image, _field(row, "sent", path, where), box, f"{row['image']}:{box}")
            else:
                add(image, _field(row, "refexp", path, where), xywh_to_xyxy(box), str(row.get("id", number)))
    else:
        raise UserError(f"{path}: RefCOCO data must be a .parquet (lmms-lab) or a .jsonl file")
    objects = len({item.object_id for item in items})
    published = PUBLISHED_EXPRESSIONS.get((dataset, split))
    protocol = {
        "layout": layout,
        "dataset": dataset,
        "split": split,
        "sample": "one per referring expression (as lmms-eval refcoco_bbox_rec and the Qwen-VL / InternVL scripts)",
        "objects": objects,
        "expressions": len(items),
        "published_expressions": published,
    }
    return Loaded(items, protocol)


def load_refcoco(path: str | Path) -> list[Item]:
    """RefCOCO-family items, one per referring expression (see :func:`read_refcoco`)."""
    return read_refcoco(path).items


def mcq_prompt(item: Item) -> str:
    """The image marker, then the question, lettered options and the lmms-eval instruction (:func:`mcq_text`)."""
    return "<image>\n" + mcq_text(item.question, item.options)


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


BENCHMARKS = ("vstar", "hrbench", "refcoco")
EXPECTED_DATA = {
    "vstar": "the V* folder (direct_attributes/, relative_position/) or its test_questions.jsonl",
    "hrbench": "an HR-Bench TSV file (hr_bench_4k.tsv or hr_bench_8k.tsv)",
    "refcoco": "a RefCOCO .parquet (lmms-lab) or .jsonl file",
}


def load(benchmark: str, data: str | Path, seed: int = 0) -> Loaded:
    """Items and protocol of a benchmark by name (``vstar``, ``hrbench``, ``refcoco``)."""
    if benchmark not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {benchmark!r}; expected one of {', '.join(BENCHMARKS)}")
    data = Path(data)
    if not data.exists():
        raise UserError(f"{data}: no such file or directory; --data for {benchmark} is {EXPECTED_DATA[benchmark]}")
    if benchmark != "vstar" and data.is_dir():
        raise UserError(f"{data} is a directory; --data for {benchmark} is {EXPECTED_DATA[benchmark]}")
    if benchmark == "vstar":
        return read_vstar(data, seed)
    return read_hrbench(data) if benchmark == "hrbench" else read_refcoco(data)


def protocol_note(protocol: dict[str, Any]) -> str:
    """One Markdown line under the table saying which protocol produced the number."""
    parts = [f"{key.replace('_', ' ')}: {value}" for key, value in protocol.items() if value is not None]
    return "Protocol: " + "; ".join(parts) + "."


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
    loaded = load(benchmark, data, seed)
    items, protocol = loaded.items[:limit], loaded.protocol
    if benchmark == "refcoco":
        published = protocol["published_expressions"]
        compare = f"; refcoco_bbox_rec_{protocol['split']} scores {published}" if published else ""
        print(
            f"{protocol['dataset']} {protocol['split']} ({protocol['layout']}): {protocol['objects']} objects, "
            f"{protocol['expressions']} expressions{compare}",
            file=sys.stderr,
        )
    processor = load_processor(model)
    proc_min, proc_max = pixel_limits(processor)
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
        metrics["objects"] = len({item.object_id for item in items})
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
    metrics = {**metrics, "protocol": protocol}
    save_report(out_dir, rows, metrics, table + "\n\n" + protocol_note(protocol))
    return metrics
