"""Turn-loop semantics, driven by recorded turns (replay backend) so every trajectory is known in advance."""

import pytest

from locus_agent.backends.replay import ReplayBackend
from locus_agent.conversation import IMAGE_PLACEHOLDER
from locus_agent.loop import END_REASONS, LoopConfig, run_episodes
from locus_agent.processor import load_processor
from locus_data.errors import UserError
from locus_reward.tool_calls import parse_trajectory

from .conftest import call, episode, think


ANSWER = think("It is red.") + "<answer>A</answer>"


def run(replay_file, turns_by_id, config=None, tokenizer=None, **episode_kwargs):
    config = config or LoopConfig()
    lines = [{"id": key, "turns": turns} for key, turns in turns_by_id.items()]
    backend = ReplayBackend(replay_file(lines), tokenizer=tokenizer)
    episodes = [episode(key, **episode_kwargs) for key in turns_by_id]
    return run_episodes(episodes, backend, config, progress=False)


def test_a_call_then_an_answer(replay_file):
    (done,) = run(replay_file, {"q1": [think() + call([10, 20, 110, 95]), ANSWER]})
    # two assistant turns, one tool turn between them holding the crop, then the answer ends the episode
    assert done.end_reason == "answer" and done.answer == "A"
    assert [segment.role for segment in done.segments] == ["prompt", "model", "tool", "model"]
    assert len(done.turns) == 2 and len(done.turns[0].calls) == 1 and done.turns[1].calls == []
    record = done.turns[0].calls[0]
    assert record.box_view == [10.0, 20.0, 110.0, 95.0] and record.error is None and record.label == "thing"
    assert record.box_orig == [int(v) for v in record.box_orig] and record.visual_tokens > 0
    tool = done.segments[2]
    assert tool.text.count(IMAGE_PLACEHOLDER) == len(tool.images) == 1
    assert "Zoomed in on the image to the region [10, 20, 110, 95] with label thing.\n" in tool.text
    # the reward's parser reads the same trajectory: one valid call, the same answer, well formed
    trajectory = parse_trajectory(done.response.replace("<|im_end|>", "").replace("<|im_start|>", ""))
    assert len(trajectory.valid_calls) == 1 and trajectory.answer == "A" and trajectory.format_ok


def test_several_calls_in_one_turn_make_one_tool_turn_in_order(replay_file):
    turn = think() + call([0, 0, 100, 100], "a") + call([5, 5], "b") + call([200, 100, 400, 300], "c")
    (done,) = run(replay_file, {"q1": [turn, ANSWER]})
    calls = done.turns[0].calls
    # every call is executed in order; the bad one is reported in its place, as text
    assert [c.label for c in calls] == ["a", None, "c"] and [c.error for c in calls] == [None, "bad_box", None]
    tools = [segment for segment in done.segments if segment.role == "tool"]
    assert len(tools) == 1 and len(tools[0].images) == 2
    text = tools[0].text
    first, error, second = (text.index(s) for s in ("label a.", "Error: bbox_2d must be", "label c."))
    assert first < error < second and text.count(IMAGE_PLACEHOLDER) == 2
    assert [image.size for image in tools[0].images] == [
        done.tool(call_of(calls[0])).image.size,
        done.tool(call_of(calls[2])).image.size,
    ]


def call_of(record):
    from locus_reward.tool_calls import ToolCall

    return ToolCall(tuple(record.box_view), record.label, record.error)


def test_the_first_answer_ends_the_episode_and_its_calls_are_not_run(replay_file):
    # a call next to the answer is not executed, and later recorded turns are never asked for
    answering = think() + call([0, 0, 50, 50]) + "<answer>B</answer>"
    (done,) = run(replay_file, {"q1": [answering, think() + call([0, 0, 60, 60]), ANSWER]})
    assert done.end_reason == "answer" and done.answer == "B" and len(done.turns) == 1
    assert done.turns[0].calls == [] and [s.role for s in done.segments] == ["prompt", "model"]


def test_max_turns_counts_assistant_turns(replay_file):
    calling = think() + call([0, 0, 50, 50])
    (done,) = run(replay_file, {"q1": [calling] * 5}, LoopConfig(max_turns=3))
    # three assistant turns, two tool turns; the third turn's call is recorded, its crop never shown
    assert done.end_reason == "max_turns" and done.answer is None
    assert len(done.turns) == 3 and [len(t.calls) for t in done.turns] == [1, 1, 1]
    assert [s.role for s in done.segments] == ["prompt", "model", "tool", "model", "tool", "model"]
    assert done.turns[2].tool_tokens == 0


def test_one_turn_allowed_answers_or_stops(replay_file):
    # with max_turns 1 a calling turn is the last: no tool turn, no answer
    done = run(replay_file, {"a": [ANSWER], "b": [think() + call([0, 0, 50, 50]), ANSWER]}, LoopConfig(max_turns=1))
    assert [(e.end_reason, e.answer) for e in done] == [("answer", "A"), ("max_turns", None)]


def test_a_turn_with_neither_call_nor_answer_ends_without_answer(replay_file):
    # plain prose is no answer: the episode ends and is scored wrong
    (done,) = run(replay_file, {"q1": [think("Hmm.") + "It is probably red.", ANSWER]})
    assert done.end_reason == "no_action" and done.answer is None and len(done.turns) == 1


def test_a_rejected_call_gets_a_text_tool_turn(replay_file):
    (done,) = run(replay_file, {"q1": [think() + call([0, 0, 50, 50], name="crop"), ANSWER]})
    tool = done.segments[2]
    # no image: the model reads what was wrong and may try again
    assert tool.role == "tool" and tool.images == [] and IMAGE_PLACEHOLDER not in tool.text
    assert "Error: unknown tool name; the only tool is image_zoom_in_tool.\n" in tool.text
    assert done.turns[0].calls[0].error == "wrong_name" and done.end_reason == "answer"


def test_running_past_the_recorded_turns_ends_without_answer(replay_file):
    # a recording that stops after a call yields an empty turn: no answer
    (done,) = run(replay_file, {"q1": [think() + call([0, 0, 50, 50])]})
    assert done.end_reason == "no_action" and done.answer is None and done.turns[-1].text == ""


def test_episodes_run_batched_and_end_independently(replay_file):
    # one batched call per round; each episode stops on its own reason and the others go on
    done = run(
        replay_file,
        {
            "fast": [ANSWER],
            "slow": [think() + call([0, 0, 50, 50]), think() + call([50, 50, 90, 90]), ANSWER],
            "quiet": ["no idea"],
        },
    )
    assert [(e.key, e.end_reason, len(e.turns)) for e in done] == [
        ("fast", "answer", 1),
        ("slow", "answer", 3),
        ("quiet", "no_action", 1),
    ]
    assert all(e.end_reason in END_REASONS for e in done)


def test_each_rollout_replays_its_own_line(replay_file):
    lines = [{"id": "q", "turns": ["<answer>A</answer>"]}, {"id": "q", "turns": ["<answer>B</answer>"]}]
    backend = ReplayBackend(replay_file(lines))
    episodes = [episode("q"), episode("q"), episode("q")]
    for sample, item in enumerate(episodes):
        item.sample = sample
    run_episodes(episodes, backend, LoopConfig(), progress=False)
    # evaluation (rollout 0) uses the first line; rollout k uses line k, cycling
    assert [e.answer for e in episodes] == ["A", "B", "A"]


@pytest.fixture(scope="module")
def tiny_tokenizer(tmp_path_factory):
    from tests.tiny_qwen_vl import save_checkpoint

    return load_processor(save_checkpoint(tmp_path_factory.mktemp("tok"), "qwen2_5_vl")).tokenizer


def test_token_budget_stops_before_a_tool_turn_that_does_not_fit(replay_file, tiny_tokenizer):
    calling = think() + call([0, 0, 50, 50])
    turns = {"q1": [calling, calling, ANSWER]}
    (free,) = run(replay_file, turns, tokenizer=tiny_tokenizer)
    first_model = free.turns[0].num_tokens
    first_tool = free.turns[0].tool_tokens
    # the tool turn's tokens: its text (each placeholder one pad) with the pads expanded to the crop's tokens
    tool_text = free.segments[2].text
    crop_tokens = free.turns[0].calls[0].visual_tokens
    expected = len(tiny_tokenizer(tool_text, add_special_tokens=False)["input_ids"]) - 1 + crop_tokens
    assert first_tool == expected and free.end_reason == "answer"
    # a budget that holds the first model turn but not its tool turn: stop there, nothing appended
    (tight,) = run(replay_file, turns, LoopConfig(max_total_tokens=first_model + first_tool), tokenizer=tiny_tokenizer)
    assert tight.end_reason == "token_budget" and len(tight.turns) == 1
    assert [s.role for s in tight.segments] == ["prompt", "model"] and tight.response_tokens == first_model
    # room for the tool turn and a few tokens: the second model turn is cut at the budget, not at max_new_tokens
    budget = first_model + first_tool + 5
    (cut,) = run(replay_file, turns, LoopConfig(max_total_tokens=budget), tokenizer=tiny_tokenizer)
    assert cut.end_reason == "token_budget" and cut.turns[1].num_tokens == 5 and not cut.turns[1].finished
    assert cut.response_tokens == budget


def test_a_turn_cut_by_max_new_tokens_is_truncated(replay_file, tiny_tokenizer):
    (done,) = run(replay_file, {"q1": [think("x" * 50) + call([0, 0, 50, 50])]}, LoopConfig(max_new_tokens=20),
                  tokenizer=tiny_tokenizer)  # fmt: skip
    assert done.end_reason == "truncated" and done.turns[0].num_tokens == 20 and not done.turns[0].finished
    assert not done.segments[-1].text.endswith("<|im_end|>")


@pytest.mark.parametrize("field, value", [("max_turns", 0), ("max_new_tokens", 0), ("max_total_tokens", -1)])
def test_bad_limits_are_user_errors(field, value):
    # --max-turns 0 and friends are one-line errors naming the setting
    with pytest.raises(UserError, match=field):
        LoopConfig(**{field: value})
