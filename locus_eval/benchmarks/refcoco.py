"""RefCOCO/+/g grounding, one item per referring expression, from lmms-lab parquet or jsonl."""

import re
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from locus_data.errors import UserError
from locus_data.rows import require_columns
from locus_eval.benchmarks.items import Item, Loaded, read_jsonl, require_field, xywh_to_xyxy


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


REFCOCO_COLUMNS = ("image", "answer", "bbox")
"""what an lmms-lab RefCOCO parquet holds (a cue-search parquet has images/problem/answer instead)"""


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
        table = pq.read_table(path)
        require_columns(path, table.column_names, REFCOCO_COLUMNS)
        for i, row in enumerate(table.to_pylist()):
            object_id = str(row.get("question_id", row.get("file_name", i)))
            add(row["image"]["bytes"], row["answer"], xywh_to_xyxy(row["bbox"]), object_id)
    elif path.suffix == ".jsonl":
        rows = read_jsonl(path)
        per_sentence = bool(rows) and "sent" in rows[0]
        layout = "per-sentence jsonl (sent, bbox x1y1x2y2)" if per_sentence else "LOCUS jsonl (refexp, bbox xywh)"
        for number, row in enumerate(rows, start=1):
            where = str(number)
            image = path.parent / require_field(row, "image", path, where)
            box = [float(v) for v in require_field(row, "bbox", path, where)]
            if per_sentence:
                # one line per sentence: lines of the same object share its image and box
                add(image, require_field(row, "sent", path, where), box, f"{row['image']}:{box}")
            else:
                add(image, require_field(row, "refexp", path, where), xywh_to_xyxy(box), str(row.get("id", number)))
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
