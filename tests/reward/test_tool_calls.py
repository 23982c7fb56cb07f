"""The crop-tool protocol parser: every call is found in order with its box or its reason, and nothing raises."""

import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from locus_reward.tool_calls import (
    CALL_ERRORS,
    MAX_CALLS_PER_TURN,
    TOOL_NAME,
    parse_call,
    parse_trajectory,
    parse_turn,
    split_trajectory,
)


def call(box, name=TOOL_NAME, label="x") -> str:
    return "<tool_call>" + json.dumps({"name": name, "arguments": {"bbox_2d": box, "label": label}}) + "</tool_call>"


def tool_turn(text="Zoomed in.") -> str:
    # what a decoded chat keeps of a tool turn once special tokens are dropped
    return f"\nuser\n<tool_response>\n{text}\n</tool_response>\nassistant\n"


@pytest.mark.parametrize(
    "body, error",
    [
        ('{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [1, 2, 3, 4]}}', None),  # the plain valid call
        ('{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [1, 2, 3, 4]', "bad_json"),  # cut-off JSON
        ("[1, 2, 3, 4]", "bad_json"),  # a bare box, not a call object
        ('{"name": "crop", "arguments": {"bbox_2d": [1, 2, 3, 4]}}', "wrong_name"),  # another tool's name
        ('{"name": "image_zoom_in_tool", "arguments": {"box": [1, 2, 3, 4]}}', "no_bbox"),  # misspelt argument
        ('{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [1, 2, 3]}}', "bad_box"),  # three numbers
        ('{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": ["1", 2, 3, 4]}}', "bad_box"),  # a string number
        ('{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [true, 2, 3, 4]}}', "bad_box"),  # bool is no number
        ('{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [NaN, 2, 3, 4]}}', "bad_box"),  # json reads NaN
        ('{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [1, 2, 1, 4]}}', "empty_box"),  # zero width
        ('{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [5, 2, 1, 4]}}', "inverted_box"),  # x2 < x1
        ('{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [1, 2, 3, 4], "label": 7}}', None),  # odd label
        ("[" * 100000, "too_long"),  # a huge body is not handed to json
    ],
)
def test_each_call_is_valid_or_names_its_reason(body, error):
    result = parse_call(body)
    assert result.error == error
    assert (result.box is None) == (error is not None)


def test_calls_come_back_in_order_with_floats():
    # several calls in one turn are all executed, in the order written
    turn = parse_turn(f"<think>Two places.</think>{call([1, 2, 30, 40])}\n{call([50.5, 6, 70, 80], label='b')}")
    assert [c.box for c in turn.calls] == [(1.0, 2.0, 30.0, 40.0), (50.5, 6.0, 70.0, 80.0)]
    assert [c.label for c in turn.calls] == ["x", "b"]
    assert turn.format_ok and turn.answer is None


def test_calls_quoted_while_thinking_are_not_read():
    # a call written inside the think block is reasoning, not an action
    turn = parse_turn(f"<think>I could {call([1, 2, 3, 4])}, but no.</think><answer>A</answer>")
    assert turn.calls == () and turn.answer == "A" and turn.format_ok


def test_a_turn_cut_off_while_thinking_has_nothing():
    # truncated at the token budget: no call, no answer, malformed
    assert parse_turn(f"<think>Let me {call([1, 2, 3, 4])}") == parse_turn("<think>") == ((), None, False)


def test_think_prefilled_turns_start_inside_the_block():
    # Qwen3-VL-Thinking templates open <think> in the prompt
    assert parse_turn(f"Zoom.</think>{call([1, 2, 3, 4])}", think_prefilled=True).format_ok
    assert not parse_turn(f"<think>Zoom.</think>{call([1, 2, 3, 4])}", think_prefilled=True).format_ok


@pytest.mark.parametrize(
    "text",
    [
        f"{call([1, 2, 3, 4])}",  # no think block
        f"<think>.</think>Let me look. {call([1, 2, 3, 4])}",  # prose outside the tags
        f"<think>.</think>{call([1, 2, 3, 4])}{call([3, 2, 1, 4])}",  # one rejected call among valid ones
        f"<think>.</think>{call([1, 2, 3, 4])}<answer>A</answer>",  # call and answer together
        "<think>.</think><answer>A</answer><answer>B</answer>",  # two answers
        f"<think>.</think>{call([1, 2, 3, 4])[:-5]}",  # unclosed call
    ],
)
def test_malformed_turns(text):
    assert not parse_turn(text).format_ok


def test_too_many_calls_are_cut():
    # bounded work per turn: later calls are rejected, never executed
    turn = parse_turn("<think>.</think>" + call([1, 2, 3, 4]) * (MAX_CALLS_PER_TURN + 5))
    assert len(turn.calls) == MAX_CALLS_PER_TURN + 1
    assert turn.calls[-1].error == "too_many_calls"


def test_split_trajectory_removes_tool_turns_and_role_lines():
    # the decoded EasyR1 response of a two-turn episode reads back as its two model turns
    first, second = f"<think>a</think>{call([1, 2, 3, 4])}", "<think>b</think><answer>C</answer>"
    assert split_trajectory(first + tool_turn() + second) == [first, second]


def test_split_removes_the_generation_prefix_of_later_turns():
    # a thinking template opens each new assistant turn with <think>; that text is the tool turn's, not the model's
    first, second = f"a</think>{call([1, 2, 3, 4])}", "b</think><answer>C</answer>"
    text = first + tool_turn() + "<think>\n" + second
    trajectory = parse_trajectory(text, think_prefilled=True, generation_prefix="<think>\n")
    assert trajectory.format_ok and trajectory.answer == "C"


def test_trajectory_rules():
    good = f"<think>a</think>{call([1, 2, 3, 4])}" + tool_turn() + "<think>b</think><answer>C</answer>"
    assert parse_trajectory(good).format_ok
    # no answer at all: the episode hit its limit
    assert not parse_trajectory(f"<think>a</think>{call([1, 2, 3, 4])}" + tool_turn()).format_ok
    # text after the answering turn: the loop never writes it
    assert not parse_trajectory(good + tool_turn() + "<think>c</think><answer>D</answer>").format_ok
    # a tool turn's text cannot fake a call: tool responses are not model turns
    fake = "<think>a</think><answer>A</answer>" + tool_turn(call([1, 2, 3, 4]))
    assert parse_trajectory(fake).calls == []


TOKENS = [*'<>/{}[]":,0123456789. ', "<tool_call>", "</tool_call>", "<think>", "</think>", "<answer>", "</answer>",
          "<tool_response>", "</tool_response>", TOOL_NAME, '"bbox_2d"', '"name"', '"arguments"', "\nuser\n",
          "\nassistant\n"]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=80).map("".join))
def test_fuzz_never_raises(text):
    # whatever a random policy writes, the parser returns a verdict
    trajectory = parse_trajectory(text)
    assert all(c.error in CALL_ERRORS or c.error is None for c in trajectory.calls)
    parse_turn(text, think_prefilled=True)


@pytest.mark.parametrize(
    "unit",
    ["<tool_call>", "<tool_call>{" * 3, "<tool_response>", "<think>", "</think><tool_call>[[[", "<answer>"],
)
def test_linear_time_on_adversarial_text(unit):
    # repeated openers must not make any step quadratic: 10x the input takes about 10x the time
    def seconds(n: int) -> float:
        # the best of three runs: one descheduled run on a busy machine is not the parser's time
        text = unit * n
        times = []
        for _ in range(3):
            start = time.perf_counter()
            parse_trajectory(text)
            times.append(time.perf_counter() - start)
        return min(times)

    small, large = seconds(20_000), seconds(200_000)
    assert large < 0.5 and large < 40 * max(small, 1e-4)
