"""The crop-tool protocol (DeepEyes'): what an agent writes in a turn, and how a whole trajectory reads back.

One home for the protocol: the agent loop (:mod:`locus_agent`) executes what :func:`parse_turn` finds, and the LFPC
rewards (:mod:`locus_reward.lfpc`) score what :func:`parse_trajectory` finds, so both read a response the same way.

A model turn is a think block, then either one or more tool calls or the final answer::

    <think>The sign is too small to read.</think>
    <tool_call>{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [410, 96, 520, 160], "label": "sign"}}
    </tool_call>

    <think>It says EXIT.</think> <answer>B</answer>

``bbox_2d`` is in the frame of the model's view of the full image: absolute pixels of the resized image it saw
(Qwen2.5-VL, MiMo-VL) or 0-1000 (Qwen3-VL); the crop tool maps it to the original image with
:mod:`locus_reward.frames`. Each tool result comes back as the next user turn inside ``<tool_response>`` tags (a
crop, or a short text saying what was wrong with the call), so a decoded trajectory -- the model turns and tool turns
of one episode, special tokens dropped, as EasyR1 hands it to the reward -- splits back into its model turns at
those tags (:func:`split_trajectory`).

Rules, stated once:

* Calls and the answer are read only after the turn's last ``</think>``: a call or answer quoted while reasoning is
  never executed or scored, and a turn cut off inside its think block has neither.
* Calls are returned in order, each valid (a box of four finite numbers with x1 < x2 and y1 < y2) or with the reason
  it was rejected: ``unclosed``, ``too_long``, ``bad_json``, ``wrong_name``, ``no_bbox``, ``bad_box`` (not four
  numbers), ``empty_box`` (zero width or height), ``inverted_box`` (x2 < x1 or y2 < y1). ``arguments`` may also be a
  JSON string holding the object (some checkpoints write it so). A turn with more than ``MAX_CALLS_PER_TURN`` calls
  keeps the first ones and rejects the rest as ``too_many_calls``.
* A turn with an answer block ends the episode (its calls are not executed). A turn is well formed when it is
  ``<think>...</think>`` followed by only tool calls, all valid (a non-final turn), or by exactly one answer block
  (the final turn), with nothing but whitespace around; a trajectory is well formed when every turn is and only its
  last turn answers.

Never raises, and linear in the input: tags are found with ``str.find``, each call's JSON is parsed once and is at
most ``MAX_CALL_CHARS`` long.

>>> turn = parse_turn('<think>Zoom.</think><tool_call>{"name": "image_zoom_in_tool", '
...                   '"arguments": {"bbox_2d": [10, 20, 110, 95], "label": "cup"}}</tool_call>')
>>> turn.calls
(ToolCall(box=(10.0, 20.0, 110.0, 95.0), label='cup', error=None),)
>>> turn.format_ok, turn.answer
(True, None)
>>> parse_turn('<think>.</think><tool_call>{"name": "zoom", "arguments": {"bbox_2d": [1, 2, 3]}}</tool_call>').calls
(ToolCall(box=None, label=None, error='wrong_name'),)
"""

import json
import math
import re
from typing import Any, NamedTuple

from locus_reward.boxes import Box
from locus_reward.options import FrameOptions
from locus_reward.parsing import ANSWER_CLOSE, ANSWER_OPEN, THINK_CLOSE, THINK_OPEN, is_blank, think_ok


TOOL_NAME = "image_zoom_in_tool"
TOOL_CALL_OPEN, TOOL_CALL_CLOSE = "<tool_call>", "</tool_call>"
TOOL_RESPONSE_OPEN, TOOL_RESPONSE_CLOSE = "<tool_response>", "</tool_response>"
MAX_CALL_CHARS = 4096
"""longest call body parsed as JSON (a call with a box and a label is well under 200 characters)"""
MAX_CALLS_PER_TURN = 32
"""calls read from one turn; later ones are rejected as ``too_many_calls`` (an episode is bounded anyway)"""
CALL_ERRORS = (
    "unclosed",
    "too_long",
    "bad_json",
    "wrong_name",
    "no_bbox",
    "bad_box",
    "empty_box",
    "inverted_box",
    "too_many_calls",
)
# the role lines a decoded chat keeps around a tool turn once special tokens are dropped:
# "<|im_end|>\n<|im_start|>user\n<tool_response>...</tool_response><|im_end|>\n<|im_start|>assistant\n"
_ROLE_BEFORE, _ROLE_AFTER = "user", "assistant"
_SPACES, _NEWLINES = re.compile(r"\s*"), re.compile(r"\n*")


class ToolCall(NamedTuple):
    box: Box | None
    """``[x1, y1, x2, y2]`` as written, in the frame of the model's view; None when the call is rejected"""
    label: str | None
    """the optional ``label`` argument (what the model says it zooms in on)"""
    error: str | None
    """None for a valid call, else why it was rejected (one of ``CALL_ERRORS``)"""

    @property
    def valid(self) -> bool:
        return self.error is None


class Turn(NamedTuple):
    calls: tuple[ToolCall, ...]
    """the tool calls after the turn's last ``</think>``, in order (valid or rejected)"""
    answer: str | None
    """text of the turn's answer block, or None when it has no single answer block"""
    format_ok: bool
    """think block, then only valid calls or exactly one answer, whitespace around"""


class Trajectory(NamedTuple):
    turns: tuple[Turn, ...]
    """the model turns, in order (tool turns removed)"""
    answer: str | None
    """the answer of the first turn that has one (it ended the episode), or None"""
    format_ok: bool
    """every turn well formed, and only the last one answers"""

    @property
    def calls(self) -> list[ToolCall]:
        """Every call of every turn, in order."""
        return [call for turn in self.turns for call in turn.calls]

    @property
    def valid_calls(self) -> list[ToolCall]:
        """The calls the tool executed (valid ones of turns before the answer)."""
        return [call for turn in self.turns if turn.answer is None for call in turn.calls if call.valid]


def parse_call(body: str) -> ToolCall:
    """Read one call from the text between ``<tool_call>`` and ``</tool_call>``.

    >>> parse_call('{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [5, 5, 5, 9]}}').error
    'empty_box'
    >>> parse_call('{"name": "image_zoom_in_tool", "arguments": "{\\\\"bbox_2d\\\\": [1, 2, 30, 40]}"}').box
    (1.0, 2.0, 30.0, 40.0)
    """
    if len(body) > MAX_CALL_CHARS:
        return ToolCall(None, None, "too_long")
    try:
        call = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: deeply nested brackets
        return ToolCall(None, None, "bad_json")
    if not isinstance(call, dict):
        return ToolCall(None, None, "bad_json")
    if call.get("name") != TOOL_NAME:
        return ToolCall(None, None, "wrong_name")
    arguments = call.get("arguments")
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except (ValueError, RecursionError):
            return ToolCall(None, None, "bad_json")
    if not isinstance(arguments, dict) or "bbox_2d" not in arguments:
        return ToolCall(None, None, "no_bbox")
    label = arguments.get("label")
    label = label if isinstance(label, str) else None
    box, error = _read_box(arguments["bbox_2d"])
    return ToolCall(box, label if box else None, error)


def _read_box(value: Any) -> tuple[Box | None, str | None]:
    if not isinstance(value, list) or len(value) != 4:
        return None, "bad_box"
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) for v in value):
        return None, "bad_box"  # bool is an int to Python; NaN and Infinity are JSON to Python's json module
    x1, y1, x2, y2 = (float(v) for v in value)
    if x2 < x1 or y2 < y1:
        return None, "inverted_box"
    if x2 == x1 or y2 == y1:
        return None, "empty_box"
    return (x1, y1, x2, y2), None


def parse_turn(
    text: str,
    think_prefilled: bool = FrameOptions.think_prefilled,
    allow_empty_think: bool = FrameOptions.allow_empty_think,
) -> Turn:
    """The calls and answer of one model turn, and whether it is well formed (see the module docstring).

    ``think_prefilled``: the turn starts inside the think block (the chat template opened it). Never raises:
    anything that is not a string is read as an empty turn.

    >>> parse_turn("<think>It is red.</think> <answer>A</answer>")
    Turn(calls=(), answer='A', format_ok=True)
    >>> parse_turn("<think>Maybe <answer>A</answer>")  # cut off while thinking: nothing is read
    Turn(calls=(), answer=None, format_ok=False)
    """
    text = text.strip() if isinstance(text, str) else ""
    think_end = text.rfind(THINK_CLOSE)
    if think_end >= 0:
        region = think_end + len(THINK_CLOSE)
    elif think_prefilled or text.startswith(THINK_OPEN):
        return Turn((), None, False)  # still inside the think block
    else:
        region = 0
    calls, spans = _calls(text, region)
    answer, answer_span = _answer(text, region)
    think = think_ok(text, think_end, think_prefilled, allow_empty_think)
    if answer is not None:
        rest = [(region, answer_span[0]), (answer_span[1], len(text))]
        format_ok = think and not calls and all(is_blank(text[a:b]) for a, b in rest)
    else:
        gaps = zip([region] + [end for _, end in spans], [start for start, _ in spans] + [len(text)])
        only_calls = all(is_blank(text[a:b]) for a, b in gaps)
        format_ok = think and bool(calls) and all(call.valid for call in calls) and only_calls
    return Turn(tuple(calls), answer, format_ok)


def _calls(text: str, region: int) -> tuple[list[ToolCall], list[tuple[int, int]]]:
    calls, spans = [], []
    start = text.find(TOOL_CALL_OPEN, region)
    while start >= 0:
        body = start + len(TOOL_CALL_OPEN)
        end = text.find(TOOL_CALL_CLOSE, body)
        if len(calls) >= MAX_CALLS_PER_TURN:
            calls.append(ToolCall(None, None, "too_many_calls"))
            spans.append((start, len(text)))
            break
        if end < 0:
            calls.append(ToolCall(None, None, "unclosed"))
            spans.append((start, len(text)))
            break
        calls.append(parse_call(text[body:end].strip()))
        spans.append((start, end + len(TOOL_CALL_CLOSE)))
        start = text.find(TOOL_CALL_OPEN, end + len(TOOL_CALL_CLOSE))
    return calls, spans


def _answer(text: str, region: int) -> tuple[str | None, tuple[int, int]]:
    start = text.find(ANSWER_OPEN, region)
    end = text.find(ANSWER_CLOSE, start + len(ANSWER_OPEN)) if start >= 0 else -1
    if start < 0 or end < 0 or text.count(ANSWER_OPEN, region) > 1 or text.count(ANSWER_CLOSE, region) > 1:
        return None, (0, 0)
    return text[start + len(ANSWER_OPEN) : end].strip(), (start, end + len(ANSWER_CLOSE))


def split_trajectory(text: str, generation_prefix: str = "") -> list[str]:
    """The model turns of a decoded trajectory: the text outside ``<tool_response>`` blocks, role lines removed.

    ``generation_prefix`` is what the chat template writes after ``assistant\\n`` when it opens a turn (Qwen3-VL
    Thinking: ``<think>\\n``); it belongs to the tool turn, not to the model's text, and is removed from every turn
    after the first. An unclosed ``<tool_response>`` ends the last turn where it opens.

    >>> split_trajectory("<think>a</think><tool_call>{}</tool_call>\\nuser\\n<tool_response>\\nZoomed in."
    ...                  "\\n</tool_response>\\nassistant\\n<think>b</think><answer>C</answer>")
    ['<think>a</think><tool_call>{}</tool_call>', '<think>b</think><answer>C</answer>']
    """
    if not isinstance(text, str):
        return []
    turns, position = [], 0
    while True:
        start = text.find(TOOL_RESPONSE_OPEN, position)
        if start < 0:
            turns.append(text[position:])
            break
        turns.append(_strip_role_line(text[position:start], _ROLE_BEFORE))
        end = text.find(TOOL_RESPONSE_CLOSE, start)
        if end < 0:
            break
        # skip whitespace, the role line and the prefix by moving an index: slicing off the rest of the text at
        # every tool turn would copy it once per turn (quadratic in long trajectories)
        position = _SPACES.match(text, end + len(TOOL_RESPONSE_CLOSE)).end()
        if text.startswith(_ROLE_AFTER, position):
            position = _NEWLINES.match(text, position + len(_ROLE_AFTER)).end()
        prefix = generation_prefix.strip()
        after_spaces = _SPACES.match(text, position).end()
        if prefix and text.startswith(prefix, after_spaces):
            position = after_spaces + len(prefix)
    return [turn.strip() for turn in turns]


def _strip_role_line(text: str, role: str) -> str:
    stripped = text.rstrip()
    return stripped[: -len(role)] if stripped.endswith("\n" + role) else text


def parse_trajectory(
    text: str,
    think_prefilled: bool = FrameOptions.think_prefilled,
    allow_empty_think: bool = FrameOptions.allow_empty_think,
    generation_prefix: str = "",
) -> Trajectory:
    """Parse every model turn of a decoded trajectory; the first answer ends it.

    Turns after the answering one are not parsed, and make the trajectory malformed (the loop never writes them).

    >>> trajectory = parse_trajectory(
    ...     '<think>Zoom.</think><tool_call>{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [1, 2, 30, 40]}}'
    ...     "</tool_call>\\nuser\\n<tool_response>\\nZoomed in.\\n</tool_response>\\nassistant\\n"
    ...     "<think>Red.</think><answer>B</answer>")
    >>> len(trajectory.turns), len(trajectory.valid_calls), trajectory.answer, trajectory.format_ok
    (2, 1, 'B', True)
    """
    pieces = split_trajectory(text, generation_prefix)
    turns = []
    for piece in pieces:
        turns.append(parse_turn(piece, think_prefilled, allow_empty_think))
        if turns[-1].answer is not None:
            break
    answer = turns[-1].answer if turns else None
    complete = answer is not None and len(turns) == len(pieces)
    format_ok = complete and all(turn.format_ok for turn in turns)
    return Trajectory(tuple(turns), answer, format_ok)
