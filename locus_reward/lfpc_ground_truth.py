"""The ``ground_truth`` string of an LFPC question: answer, options, nested boxes and both image sizes, as JSON.

EasyR1 hands a reward only ``response``, ``response_length`` and ``ground_truth``, so everything the LFPC rewards
need travels in one JSON object::

    {"answer": "B",                      # the option letter with choices, else the short answer text
     "choices": ["red", "green", ...],   # optional: 2-8 option texts (answer is then one of their letters)
     "boxes": [[x1, y1, x2, y2], ...],   # optional: nested GT boxes, smallest first, ORIGINAL-image pixels
     "width": 3000, "height": 2000,      # the original image (crops are cut from it; boxes are in it)
     "view_width": 1500, "view_height": 1000}  # the stored view image the model was shown, before EasyR1's resize

Boxes have exclusive corners (:mod:`locus_reward.boxes`), lie inside the original image and are nested: each inside
the next (``B_1 ⊂ B_2 ⊂ ...``, equal edges allowed). The same checks serve the VQA manifest
(:mod:`locus_data.vqa`), which reports them with the file and line: :func:`check_choices`, :func:`check_answer`
and :func:`check_boxes`.

>>> text = dumps("B", 3000, 2000, view_width=1500, view_height=1000, choices=["red", "green"],
...              boxes=[(1000, 600, 1040, 640), (960, 560, 1160, 720)])
>>> gt = loads(text)
>>> gt.answer, gt.choices, gt.boxes[0], (gt.view_width, gt.view_height)
('B', ('red', 'green'), (1000.0, 600.0, 1040.0, 640.0), (1500, 1000))
>>> loads(text.replace("1160", "1020"))
Traceback (most recent call last):
...
ValueError: boxes are not nested: box 1 [960.0, 560.0, 1020.0, 720.0] does not contain box 0 \
[1000.0, 600.0, 1040.0, 640.0] (list them smallest first, each inside the next)
"""

import json
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

from locus_reward.answers import LETTERS
from locus_reward.boxes import Box


class LfpcGroundTruth(NamedTuple):
    answer: str
    """the option letter (with choices) or the short answer"""
    choices: tuple[str, ...] | None
    """the option texts in letter order, or None for a short-answer question"""
    boxes: tuple[Box, ...]
    """nested GT boxes in original-image pixels, smallest first (may be empty)"""
    width: int
    """original image width"""
    height: int
    """original image height"""
    view_width: int
    """width of the stored view image the model was shown (before EasyR1's and the processor's resizes)"""
    view_height: int
    """height of that view image"""


def dumps(
    answer: str,
    width: int,
    height: int,
    *,
    view_width: int | None = None,
    view_height: int | None = None,
    choices: Sequence[str] | None = None,
    boxes: Sequence[Sequence[float]] = (),
) -> str:
    """Serialize one question's ground truth; validates first, so a bad row cannot be written.

    The view size defaults to the original's (the model is shown the original image, resized only by the pipeline).
    """
    view_width = width if view_width is None else view_width
    view_height = height if view_height is None else view_height
    gt = _checked(answer, choices, boxes, width, height, view_width, view_height)
    obj: dict[str, Any] = {"answer": gt.answer}
    if gt.choices is not None:
        obj["choices"] = list(gt.choices)
    obj["boxes"] = [list(box) for box in gt.boxes]
    obj.update(width=gt.width, height=gt.height, view_width=gt.view_width, view_height=gt.view_height)
    return json.dumps(obj, ensure_ascii=False)


def loads(text: str) -> LfpcGroundTruth:
    """Parse and validate a ground-truth string; raises ValueError naming the problem (never anything else)."""
    try:
        obj = json.loads(text)
    except (TypeError, ValueError, RecursionError) as err:  # RecursionError: deeply nested brackets
        raise ValueError(f"ground truth is not a JSON string: {str(text)[:80]!r}") from err
    required = ("answer", "width", "height", "view_width", "view_height")
    if not isinstance(obj, dict) or not set(required) <= obj.keys():
        raise ValueError(f"ground truth must be an object with {', '.join(required)}: {str(text)[:80]!r}")
    boxes = obj.get("boxes")
    return _checked(
        obj["answer"],
        obj.get("choices"),
        [] if boxes is None else boxes,
        obj["width"],
        obj["height"],
        obj["view_width"],
        obj["view_height"],
    )


def check_choices(choices: Any) -> tuple[str, ...] | None:
    """None, or 2-8 non-empty option texts as a tuple."""
    if choices is None:
        return None
    if not isinstance(choices, (list, tuple)) or not 2 <= len(choices) <= len(LETTERS):
        raise ValueError(f"choices must be a list of 2 to {len(LETTERS)} option texts, got {choices!r}")
    if not all(isinstance(choice, str) and choice.strip() for choice in choices):
        raise ValueError(f"choices must be non-empty strings, got {choices!r}")
    return tuple(choices)


def check_answer(answer: Any, choices: Any) -> tuple[str, tuple[str, ...] | None]:
    """``(answer, choices)`` checked: a non-empty answer; with :func:`check_choices`' options, one of their letters.

    >>> check_answer("C", ["a", "b"])
    Traceback (most recent call last):
    ...
    ValueError: answer 'C' is not the letter of one of the 2 choices (A-B)
    """
    choices = check_choices(choices)
    if not isinstance(answer, str) or not answer.strip():
        raise ValueError(f"answer must be a non-empty string, got {answer!r}")
    if choices is None:
        return answer, None
    letters = LETTERS[: len(choices)]
    if answer not in letters:
        raise ValueError(f"answer {answer!r} is not the letter of one of the {len(choices)} choices (A-{letters[-1]})")
    return answer, choices


def check_boxes(boxes: Any, width: int, height: int) -> tuple[Box, ...]:
    """Boxes checked: each 4 finite numbers, ``0 <= x1 < x2 <= width`` (same for y), each inside the next.

    >>> check_boxes([[10, 10, 20, 20], [0, 0, 30, 40]], 30, 30)
    Traceback (most recent call last):
    ...
    ValueError: box 1 [0.0, 0.0, 30.0, 40.0] is not x1 < x2, y1 < y2 inside the 30x30 image
    """
    if not isinstance(boxes, (list, tuple)):
        raise ValueError(f"boxes must be a list of [x1, y1, x2, y2] boxes, got {boxes!r}")
    checked: list[Box] = []
    for k, box in enumerate(boxes):
        if not isinstance(box, (list, tuple)) or len(box) != 4 or not all(_is_number(v) for v in box):
            raise ValueError(f"box {k} must be a list of 4 numbers, got {box!r}")
        try:
            x1, y1, x2, y2 = (float(v) for v in box)
        except OverflowError as err:  # an integer too large for a float
            raise ValueError(f"box {k} has a number out of range: {box!r}") from err
        if not all(math.isfinite(v) for v in (x1, y1, x2, y2)) or not (
            0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
        ):
            raise ValueError(f"box {k} {[x1, y1, x2, y2]} is not x1 < x2, y1 < y2 inside the {width}x{height} image")
        checked.append((x1, y1, x2, y2))
    for k in range(1, len(checked)):
        inner, outer = checked[k - 1], checked[k]
        if not (outer[0] <= inner[0] and outer[1] <= inner[1] and inner[2] <= outer[2] and inner[3] <= outer[3]):
            raise ValueError(
                f"boxes are not nested: box {k} {list(outer)} does not contain box {k - 1} {list(inner)} "
                "(list them smallest first, each inside the next)"
            )
    return tuple(checked)


def check_size(width: Any, height: Any, what: str = "image") -> tuple[int, int]:
    """A positive integer ``(width, height)``; ``what`` names the image in the error."""
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (width, height)):
        raise ValueError(f"{what} width/height must be positive integers, got {width!r}, {height!r}")
    return width, height


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _checked(
    answer: Any, choices: Any, boxes: Any, width: Any, height: Any, view_width: Any, view_height: Any
) -> LfpcGroundTruth:
    answer, choices = check_answer(answer, choices)
    width, height = check_size(width, height)
    view_width, view_height = check_size(view_width, view_height, "view image")
    return LfpcGroundTruth(answer, choices, check_boxes(boxes, width, height), width, height, view_width, view_height)
