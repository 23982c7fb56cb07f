"""The questions of ``locus-eval agent``: V*, HR-Bench and VQA manifests as benchmark items, checked before a model
loads.

V* and HR-Bench are read by ``locus-eval bench``'s own loaders (:func:`locus_eval.benchmarks.load`), so ids
(``Item.name``: ``<category>/<name>`` for the V* folders, ``question_id`` for its ``test_questions.jsonl``, the TSV
``index`` for HR-Bench), option order and letters are exactly the ones ``bench`` uses. A VQA manifest
(:mod:`locus_data.vqa`, which reports a missing image or answer and boxes outside the image as one line naming
``file:line``) becomes the same items: its ``id``, ``choices`` as options, nested ``boxes``, and its ``category``
field when it has one.

Every image is opened (header only) here, so a missing or unreadable image, or a V* box outside its image, is a
one-line error before any model is loaded. GT boxes are ``[x1, y1, x2, y2]`` in original pixels; a V* box that only
overhangs the image is clipped to it (and counted in the protocol), one wholly outside is an error.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from locus_data.errors import UserError
from locus_data.images import open_image
from locus_data.vqa import read_manifest
from locus_eval import benchmarks
from locus_eval.benchmarks import Item
from locus_eval.benchmarks.evaluate import EXPECTED_DATA as BENCHMARK_DATA
from locus_reward import boxes
from locus_reward.answers import question_prompt
from locus_reward.boxes import Box


AGENT_BENCHMARKS = ("vstar", "hrbench", "manifest")
EXPECTED_DATA = {**BENCHMARK_DATA, "manifest": "a VQA manifest (.jsonl or .parquet, or its folder)"}


@dataclass
class Questions:
    """A benchmark's items, what each image measures, and the protocol reading them implies."""

    items: list[Item]
    """questions in file order (``index`` = position, ``name`` = the id)"""
    sizes: dict[int, tuple[int, int]]
    """``(W, H)`` of each item's original image, by index"""
    protocol: dict[str, Any]
    """layout read, option order, scoring (saved in metrics.json and table.md)"""

    def gt_boxes(self, item: Item) -> list[Box]:
        """The item's GT boxes in original pixels, as floats."""
        return [tuple(float(v) for v in box) for box in item.boxes]


def load_questions(benchmark: str, data: str | Path, seed: int = 0) -> Questions:
    """Items, image sizes and protocol of ``--benchmark`` at ``--data``; one-line UserErrors for bad input."""
    if benchmark not in AGENT_BENCHMARKS:
        raise UserError(f"unknown --benchmark {benchmark!r}; expected one of {', '.join(AGENT_BENCHMARKS)}")
    if benchmark == "manifest":
        return _manifest(data)
    loaded = benchmarks.load(benchmark, data, seed)
    sizes = {item.index: _image_size(item, Path(data)) for item in loaded.items}
    clipped = 0
    for item in loaded.items:
        item.boxes, changed = _checked_boxes(item, sizes[item.index], Path(data))
        clipped += changed
    protocol = dict(loaded.protocol)
    if clipped:
        protocol["gt_boxes_clipped"] = f"{clipped} boxes overhanging their image, clipped to it"
    return Questions(loaded.items, sizes, protocol)


def _manifest(data: str | Path) -> Questions:
    vqa = read_manifest(data)
    items = [
        Item(
            index=i,
            image=row.image,
            question=row.question,
            options=list(row.choices or ()),
            answer=row.answer,
            category=str(row.extra.get("category", "")),
            boxes=[list(box) for box in row.boxes],
            name=row.id,
        )
        for i, row in enumerate(vqa)
    ]
    sizes = {i: (row.width, row.height) for i, row in enumerate(vqa)}
    with_choices = sum(bool(item.options) for item in items)
    protocol = {
        "layout": "VQA manifest (locus_data.vqa)",
        "questions": f"{len(items)} ({with_choices} multiple choice, {sum(bool(i.boxes) for i in items)} with boxes)",
        "scoring": "the option letter (choices, as bench reads letters) or the normalised short answer "
        "(locus_reward.answers.is_correct)",
    }
    return Questions(items, sizes, protocol)


def _image_size(item: Item, data: Path) -> tuple[int, int]:
    where = f"{data}: question {item.name}"
    if isinstance(item.image, (str, Path)) and not Path(item.image).is_file():
        raise UserError(f"{where}: image {item.image} not found; put the benchmark's images next to its annotations")
    try:
        with open_image(item.image) as image:
            return image.size
    except (OSError, ValueError) as err:
        raise UserError(f"{where}: the image is not readable ({err})") from None


def _checked_boxes(item: Item, size: tuple[int, int], data: Path) -> tuple[list[list[float]], int]:
    width, height = size
    checked, clipped = [], 0
    for box in item.boxes:
        inside = boxes.clip_box(tuple(float(v) for v in box), width, height)
        if not boxes.is_valid(inside):
            source = Path(item.image).with_suffix(".json") if isinstance(item.image, Path) else data
            raise UserError(
                f"{source}: GT box {[round(v, 2) for v in box]} of question {item.name} lies outside its "
                f"{width}x{height} image (or is empty); fix the annotation"
            )
        clipped += inside != tuple(float(v) for v in box)
        checked.append(list(inside))
    return checked, clipped


def question_text(item: Item) -> str:
    """The user text after the image, exactly as LFPC training asks it (:func:`locus_reward.answers.question_prompt`):
    bench's multiple-choice text (options as ``A. ...`` and the instruction to answer with the letter) or the
    short-answer question with its one-word-or-phrase instruction."""
    return question_prompt(item.question, item.options)
