"""The append-only chat text is the checkpoint's chat template rendering, and the reward's splitter reads it back."""

import json

import pytest

from locus_agent.backends.replay import ReplayBackend
from locus_agent.conversation import (
    IMAGE_PLACEHOLDER,
    TOOL_SCHEMA,
    generation_prefix,
    render_prompt,
    system_prompt,
)
from locus_agent.loop import LoopConfig, run_episodes
from locus_agent.processor import load_processor, set_pixel_limits
from locus_reward import frames
from locus_reward.tool_calls import TOOL_NAME, parse_trajectory, split_trajectory

from .conftest import call, episode


@pytest.mark.parametrize(
    "coord_frame, frame_words",
    [
        ("qwen2_5_vl", "absolute pixel coordinates of the image you see"),
        ("qwen3_vl", "relative coordinates from 0 to 1000 of the image you see"),
    ],
)
def test_system_prompt_states_the_frame_and_carries_the_schema(coord_frame, frame_words):
    text = system_prompt(coord_frame)
    assert frame_words in text
    # the schema between <tools> tags is the tool the parser accepts (one home of its name)
    schema = json.loads(text.split("<tools>\n", 1)[1].split("\n</tools>", 1)[0])
    assert schema == TOOL_SCHEMA and schema["function"]["name"] == TOOL_NAME
    # the prose names the same tool, and asks for the format the parser reads
    assert text.count("image_zoom_in_tool") == text.count(TOOL_NAME) >= 2
    assert "<think>...</think>" in text and "<answer>...</answer>" in text
    assert text == text.strip() and "{tools}" not in text


class Recording:
    """A backend wrapper that keeps every request it was asked."""

    def __init__(self, backend):
        self.backend, self.requests = backend, []

    def generate(self, requests, max_new_tokens):
        self.requests.extend(requests)
        return self.backend.generate(requests, max_new_tokens)


@pytest.fixture(scope="module")
def tiny_qwen3_vl(tmp_path_factory):
    from tests.tiny_qwen_vl import save_checkpoint

    return save_checkpoint(tmp_path_factory.mktemp("tiny_qwen3_vl"), "qwen3_vl")


@pytest.fixture(params=["qwen2_5_vl", "qwen3_vl", "qwen3_vl_thinking"])
def processor_of(request):
    """(coord_frame, processor) of a tiny checkpoint; the thinking one opens <think> in its generation prompt."""
    kind = request.param.removesuffix("_thinking")
    processor = load_processor(request.getfixturevalue(f"tiny_{request.param}"))
    # an agent's processor takes the view and crop budgets whole (the tiny ones stop at 448 x 448 pixels)
    set_pixel_limits(processor, None, frames.budget_pixels(16384, kind))
    return kind, processor


def test_append_only_text_equals_the_chat_template(processor_of, replay_file):
    kind, processor = processor_of
    prefix_thinks = "<think>" in processor.chat_template.split("add_generation_prompt")[-1]
    opening = "" if prefix_thinks else "<think>"
    first = f"{opening}Small sign.</think>" + call([10, 20, 110, 95], "sign") + call([1, 2, 3], "bad")
    second = f"{opening}It is red.</think><answer>A</answer>"
    backend = Recording(ReplayBackend(replay_file([{"id": "q1", "turns": [first, second]}])))
    (done,) = run_episodes([episode("q1", coord_frame=kind, processor=processor)], backend, LoopConfig(), False)
    assert done.answer == "A" and done.generation_prefix == ("<think>\n" if prefix_thinks else "")
    view_image = done.view.image
    crop_image = done.segments[2].images[0]
    # the same conversation as chat messages, written by hand, rendered by the checkpoint's own template
    messages = [
        {"role": "system", "content": system_prompt(kind)},
        {
            "role": "user",
            "content": [{"type": "image", "image": view_image}, {"type": "text", "text": "What colour is the sign?"}],
        },
        {"role": "assistant", "content": done.generation_prefix + first},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "<tool_response>\n"},
                {"type": "image", "image": crop_image},
                {"type": "text", "text": "Zoomed in on the image to the region [10, 20, 110, 95] with label sign.\n"},
                {"type": "text", "text": "Error: bbox_2d must be four numbers [x1, y1, x2, y2].\n"},
                {"type": "text", "text": "</tool_response>"},
            ],
        },
    ]
    rendered = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    second_request = backend.requests[1]
    assert second_request.prompt == rendered
    assert second_request.images == [view_image, crop_image] and second_request.turn == 1
    # the episode's own messages render to the same text (what an API backend sends)
    again = processor.apply_chat_template(second_request.messages, tokenize=False, add_generation_prompt=True)
    assert again == rendered
    # the whole episode is the template's rendering of all five turns (the last without its trailing newline)
    everything = [*messages, {"role": "assistant", "content": done.generation_prefix + second}]
    full = processor.apply_chat_template(everything, tokenize=False)
    assert "".join(s.text for s in done.segments) + "\n" == full
    # and the processor expands the same text with both images without complaint
    inputs = processor(text=[second_request.prompt], images=second_request.images, return_tensors="np")
    expected_pads = done.view.tokens + done.turns[0].calls[0].visual_tokens
    assert int((inputs["input_ids"] == processor.image_token_id).sum()) == expected_pads


def test_decoded_trajectory_splits_back_into_the_model_turns(processor_of, replay_file):
    kind, processor = processor_of
    prefilled = "<think>" in processor.chat_template.split("add_generation_prompt")[-1]
    opening = "" if prefilled else "<think>"
    turns = [
        f"{opening}Where?</think>" + call([0, 0, 40, 40], "a"),
        f"{opening}Closer.</think>" + call([5, 5, 25, 25]) + "\n" + call([1, 1, 2], "broken"),
        f"{opening}Red.</think> <answer>B</answer>",
    ]
    backend = ReplayBackend(replay_file([{"id": "q1", "turns": turns}]))
    (done,) = run_episodes([episode("q1", coord_frame=kind, processor=processor)], backend, LoopConfig(), False)
    tokenizer = processor.tokenizer
    # what EasyR1 hands the reward: the response tokens decoded without special tokens
    decoded = tokenizer.decode(
        tokenizer(done.response, add_special_tokens=False)["input_ids"], skip_special_tokens=True
    )
    assert IMAGE_PLACEHOLDER not in decoded and "<|im_end|>" not in decoded
    assert split_trajectory(decoded, done.generation_prefix) == [turn.strip() for turn in turns]
    trajectory = parse_trajectory(decoded, think_prefilled=prefilled, generation_prefix=done.generation_prefix)
    # the reward and the loop agree: the same executed calls, the same answer
    assert trajectory.answer == done.answer == "B"
    assert [c.box for c in trajectory.valid_calls] == [tuple(c.box_view) for c in done.calls if c.error is None]


def test_first_prompt_without_a_processor_is_the_templates_text(tiny_qwen2_5_vl):
    processor = load_processor(tiny_qwen2_5_vl)
    ours = episode("q1", processor=None).segments[0].text
    theirs = episode("q1", processor=processor).segments[0].text
    # the ChatML fallback (API and replay backends) writes what a Qwen template writes
    assert ours == theirs and ours.endswith("<|im_start|>assistant\n") and ours.count(IMAGE_PLACEHOLDER) == 1


def test_generation_prefix_needs_an_assistant_prompt():
    # a template that opens no assistant turn cannot drive an agent: say so instead of appending blindly
    assert generation_prefix(render_prompt([{"role": "user", "content": "Q"}])) == ""
    with pytest.raises(ValueError, match="assistant"):
        generation_prefix("<|im_start|>user\nQ<|im_end|>\n")
