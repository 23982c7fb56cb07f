"""Reading the box and the output format out of a model response, without ever raising.

The contract the prompt asks for is ``<think>reasoning</think><answer>box</answer>``. The box is read only from the
answer block after the last ``</think>``: a box quoted while reasoning is never scored, and a response cut off inside
its think block has no answer. Inside the answer block exactly one box must appear, written the ways Qwen-family
models write it (see :func:`parse_box`); two or more boxes are ambiguous and score nothing, so hedging cannot pay.

Format is well formed only for ``<think>...</think>`` followed by exactly one ``<answer>...</answer>`` that holds a
valid box, with nothing but whitespace around. Tags are exact and case-sensitive, as the prompt writes them; tags
quoted inside the think text are just text. Two choices are deliberate:

* ``think_prefilled=True`` is for chat templates that open the think block in the prompt (Qwen3-VL-Thinking): the
  response then starts inside it, and a second ``<think>`` is malformed.
* An empty think block (MiMo-VL writes ``<think>\\n</think>`` when it decides not to reason) is well formed by
  default. The format term checks the output contract, not reasoning length; penalizing it would cost MiMo 0.1 on
  every correct non-thinking answer and pay the policy to pad the block. ``allow_empty_think=False`` turns that off.

Bounded work: tags are located with ``str.find``/``str.count`` (linear, C speed) over the whole response, so no cap
can change a verdict on a normal response. Regular expressions run only on the answer block, and only when it is at
most ``MAX_ANSWER_CHARS`` long (a box answer is tens of characters; longer blocks fail as ``"answer_too_long"``).
The box pattern is built so that an attempt starts only at ``[`` or ``(`` and cannot run past the bracket after next,
which keeps it linear-time on adversarial text; it also stops at the second box found.

>>> parse_response('<think>The cue is the red sign.</think> <answer>{"bbox_2d": [12, 40, 88, 97]}</answer>')
ParsedResponse(box=(12.0, 40.0, 88.0, 97.0), format_ok=True, failure=None, answer='{"bbox_2d": [12, 40, 88, 97]}')
>>> parse_response("<think>Maybe [1, 2, 3, 4]? I am not sure.")  # cut off while thinking: no answer block
ParsedResponse(box=None, format_ok=False, failure='no_answer', answer=None)
"""

import re
from collections.abc import Sequence
from typing import NamedTuple

from locus_reward.boxes import Box, is_valid
from locus_reward.options import FrameOptions


THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"
MAX_ANSWER_CHARS = 4096
"""Longest answer block that is searched for a box (a JSON box with a label is well under 200 characters)."""

# One number: the integer part and the fraction cannot trade digits, so a failed attempt backtracks in linear time.
_NUMBER = r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
_COMMA = r"\s*,\s*"
_BOX = re.compile(
    # [x1, y1, x2, y2], alone, as the value of "bbox_2d", in a ```json fence or in a one-element list
    rf"\[\s*({_NUMBER}){_COMMA}({_NUMBER}){_COMMA}({_NUMBER}){_COMMA}({_NUMBER})\s*\]"
    # (x1, y1), (x2, y2): Qwen2-VL's corner notation
    rf"|\(\s*({_NUMBER}){_COMMA}({_NUMBER})\s*\){_COMMA}\(\s*({_NUMBER}){_COMMA}({_NUMBER})\s*\)",
    re.ASCII,  # ASCII digits and whitespace only: float() would also accept other scripts' digits
)


class ParsedResponse(NamedTuple):
    box: Box | None
    """the box in the model's own coordinates, as written (not clipped); None when ``failure`` is set"""
    format_ok: bool
    """True only for the exact think-then-answer contract around a valid box"""
    failure: str | None
    """why no box was read: no_answer, multiple_answers, answer_too_long, no_box, multiple_boxes, invalid_box"""
    answer: str | None
    """text inside the answer block, None when there is no single answer block or it is too long to search"""


def parse_box(text: str) -> Box | None:
    """The one box written in ``text``, or None when there is none, more than one, or it is not a valid box.

    Accepts ``[x1, y1, x2, y2]`` (also as ``{"bbox_2d": [...]}``, in a ```json fence or a one-element list) and
    ``(x1, y1), (x2, y2)``; numbers may be negative, floats or exponents. Invalid means non-finite (``1e999``),
    inverted or zero-area; numbers outside the image are kept here and clipped by the scorer.

    >>> parse_box('```json\\n[{"bbox_2d": [10.5, 20, 110, 95.25], "label": "cue"}]\\n```')
    (10.5, 20.0, 110.0, 95.25)
    >>> parse_box("(-3, 4), (50, 60)")
    (-3.0, 4.0, 50.0, 60.0)
    >>> parse_box("[40, 20, 10, 60]") is None  # x2 < x1
    True
    >>> parse_box("[1, 2, 3, 4] or [5, 6, 7, 8]") is None  # two boxes are ambiguous
    True
    """
    return _read_box(text)[0]


def format_answer(box: Sequence[float], decimals: int = 0) -> str:
    """The box as the prompts ask for it, ``[x1, y1, x2, y2]``: what exporters and checks write, parse_box reads.

    >>> format_answer([12, 40, 88, 97])
    '[12, 40, 88, 97]'
    >>> format_answer((10.25, 20.0, 110.0, 95.5), decimals=2)
    '[10.25, 20.00, 110.00, 95.50]'
    >>> parse_box(format_answer((10.25, 20.0, 110.0, 95.5), decimals=2))
    (10.25, 20.0, 110.0, 95.5)
    """
    return "[" + ", ".join(f"{value:.{decimals}f}" for value in box) + "]"


def parse_response(
    response: str,
    think_prefilled: bool = FrameOptions.think_prefilled,
    allow_empty_think: bool = FrameOptions.allow_empty_think,
) -> ParsedResponse:
    """Split a decoded response into its box and format verdict (see the module docstring for the rules).

    Never raises: anything that is not a string is read as an empty response.

    >>> parse_response("</think><answer>[1, 2, 3, 4]</answer>", think_prefilled=True).format_ok
    True
    >>> parse_response("<answer>[1, 2, 3, 4]</answer>")  # box counts, but the think block is missing
    ParsedResponse(box=(1.0, 2.0, 3.0, 4.0), format_ok=False, failure=None, answer='[1, 2, 3, 4]')
    """
    text = response.strip() if isinstance(response, str) else ""
    think_end = text.rfind(THINK_CLOSE)
    if think_end >= 0:
        region = think_end + len(THINK_CLOSE)
    elif think_prefilled or text.startswith(THINK_OPEN):
        # still inside the think block (truncated): whatever looks like an answer is reasoning
        return ParsedResponse(None, False, "no_answer", None)
    else:
        region = 0

    start = text.find(ANSWER_OPEN, region)
    end = text.find(ANSWER_CLOSE, start + len(ANSWER_OPEN)) if start >= 0 else -1
    if start < 0 or end < 0:
        return ParsedResponse(None, False, "no_answer", None)
    if text.count(ANSWER_OPEN, region) > 1 or text.count(ANSWER_CLOSE, region) > 1:
        return ParsedResponse(None, False, "multiple_answers", None)
    body = start + len(ANSWER_OPEN)
    if end - body > MAX_ANSWER_CHARS:
        return ParsedResponse(None, False, "answer_too_long", None)

    answer = text[body:end]
    box, failure = _read_box(answer)
    format_ok = box is not None and _well_formed(text, think_end, start, end, think_prefilled, allow_empty_think)
    return ParsedResponse(box, format_ok, failure, answer)


def _read_box(text: str) -> tuple[Box | None, str | None]:
    first = _BOX.search(text) if isinstance(text, str) else None
    if first is None:
        return None, "no_box"
    if _BOX.search(text, first.end()) is not None:
        return None, "multiple_boxes"
    groups = first.groups()
    x1, y1, x2, y2 = groups[:4] if groups[0] is not None else groups[4:]  # which notation matched
    box = (float(x1), float(y1), float(x2), float(y2))
    return (box, None) if is_valid(box) else (None, "invalid_box")


def _well_formed(
    text: str, think_end: int, answer_start: int, answer_end: int, think_prefilled: bool, allow_empty_think: bool
) -> bool:
    # ``text`` is stripped and has exactly one answer block after the last </think>; check everything else
    if not think_ok(text, think_end, think_prefilled, allow_empty_think):
        return False
    between = text[think_end + len(THINK_CLOSE) : answer_start]
    return is_blank(between) and answer_end + len(ANSWER_CLOSE) == len(text)


def think_ok(text: str, think_end: int, think_prefilled: bool, allow_empty_think: bool) -> bool:
    """The think-block rule of a stripped turn whose last ``</think>`` is at ``think_end`` (-1: none): exactly one
    block, opened by the turn itself unless the template prefilled it, and not empty unless allowed.

    >>> think_ok("<think>Red.</think><answer>A</answer>", 11, think_prefilled=False, allow_empty_think=True)
    True
    """
    if think_end < 0 or text.count(THINK_CLOSE) != 1:
        return False
    if think_prefilled:
        think_start = 0
        if THINK_OPEN in text:
            return False
    else:
        think_start = len(THINK_OPEN)
        if not text.startswith(THINK_OPEN) or text.count(THINK_OPEN) != 1:
            return False
    return allow_empty_think or not is_blank(text[think_start:think_end])


def is_blank(text: str) -> bool:
    """Empty or white space only."""
    return not text or text.isspace()
