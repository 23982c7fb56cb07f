"""V*Bench (``craigwu/vstar_bench``) from its per-sample folders or its ``test_questions.jsonl``."""

import json
import random
import re
from pathlib import Path

from locus_data.errors import UserError
from locus_eval.benchmarks.items import Item, Loaded, read_jsonl, require_field, xywh_to_xyxy
from locus_eval.benchmarks.prompts import MCQ_INSTRUCTION
from locus_reward.answers import LETTERS


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
        options, answer = shuffled_options(
            list(require_field(ann, "options", file, "1")), f"{category}/{file.stem}", seed
        )
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
        question, options = _vstar_question(require_field(row, "text", path, where), path, where)
        label = str(require_field(row, "label", path, where)).strip().strip("()").upper()
        if label not in LETTERS[: len(options)]:
            raise UserError(f"{path}:{number}: label {label!r} is not one of the {len(options)} options")
        image = path.parent / require_field(row, "image", path, where)
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
