"""The backends behind the loop: HF on tiny random models, an OpenAI-compatible server, recorded turns, vLLM (GPU)."""

import base64
import io
import json
import subprocess
import sys

import pytest
from PIL import Image

from locus_agent.backends import Request, load_backend
from locus_agent.backends.openai_api import OpenAIBackend
from locus_agent.backends.replay import ReplayBackend
from locus_agent.loop import END_REASONS, LoopConfig, run_episodes
from locus_agent.processor import load_processor, pixel_limits
from locus_data.errors import UserError
from locus_reward import frames
from tests.testing_utils import require_gpu, require_vllm

from .conftest import call, episode, think
from .fake_openai import FakeServer, completion


BUDGET = 64  # visual tokens of the view and of each crop: small enough for a CPU forward of a random model


def test_locus_agent_imports_no_heavy_library():
    # the loop, the tool and every backend module load without torch, transformers, vllm or openai
    code = (
        "import sys, locus_agent.loop, locus_agent.backends.hf, locus_agent.backends.vllm, "
        "locus_agent.backends.openai_api, locus_agent.backends.replay; "
        "print(sorted(m for m in ('torch', 'transformers', 'vllm', 'openai') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


class FirstTurnReplayed:
    """Turn 0 from recorded text (calls a random model would never write), later turns from the model."""

    def __init__(self, replay, model):
        self.replay, self.model = replay, model
        self.count_text_tokens = model.count_text_tokens

    def generate(self, requests, max_new_tokens):
        limits = max_new_tokens if isinstance(max_new_tokens, list) else [max_new_tokens] * len(requests)
        first = [i for i, r in enumerate(requests) if r.turn == 0 and r.key in self.replay.lines]
        later = [i for i in range(len(requests)) if i not in first]
        out = [None] * len(requests)
        for indices, backend in ((first, self.replay), (later, self.model)):
            if indices:
                results = backend.generate([requests[i] for i in indices], [limits[i] for i in indices])
                for i, result in zip(indices, results):
                    out[i] = result
        return out


def test_hf_end_to_end_with_a_random_model(tiny_checkpoint, replay_file):
    kind, path = tiny_checkpoint
    budget = frames.budget_pixels(BUDGET, kind)
    model = load_backend("hf", path, max_pixels=budget)
    processor = model.processor
    assert pixel_limits(processor)[1] == budget
    planted = [
        think() + call([5, 5, 120, 90], "a") + call([1, 2, 3]) + "<tool_call>{not json</tool_call>",  # good + bad
        think() + call([0, 0, 10**9, 10**9], "huge") + call([50, 50, 51, 52], "tiny"),  # clamped, grown
        think() + "<tool_call>" + "[" * 5000,  # unclosed and long
    ]
    replay = ReplayBackend(replay_file([{"id": f"q{i}", "turns": [turn]} for i, turn in enumerate(planted)]))
    sizes = [(300, 200), (220, 400), (500, 90)]
    episodes = [
        episode(f"q{i}", size=size, coord_frame=kind, budget=BUDGET, processor=processor, crop_tokens=BUDGET)
        for i, size in enumerate(sizes)
    ]
    # plus two episodes the random model drives from the first turn (whatever it writes must not crash the run)
    episodes += [episode(f"free{i}", size=(260, 180), coord_frame=kind, budget=BUDGET, processor=processor,
                         crop_tokens=BUDGET) for i in range(2)]  # fmt: skip
    backend = FirstTurnReplayed(replay, model)
    config = LoopConfig(max_turns=3, max_new_tokens=12, max_total_tokens=4000)
    run_episodes(episodes, backend, config, progress=False)
    for item in episodes:
        assert item.end_reason in END_REASONS and 1 <= len(item.turns) <= 3
        json.dumps([turn.to_dict() for turn in item.turns])  # records are complete and JSON-safe
        for turn, segment in zip(item.turns, [s for s in item.segments if s.role == "model"]):
            assert turn.seconds >= 0 and (turn.num_tokens >= 1 or not item.key.startswith("free"))
            if segment.token_ids is not None and item.key.startswith("free"):
                # the model's own ids, end token included when it stopped; decoded they are the turn's text
                assert len(segment.token_ids) == turn.num_tokens <= 12
                decoded = processor.tokenizer.decode(segment.token_ids, skip_special_tokens=True)
                assert decoded == turn.text
        # the prompt holds the view; each appended tool turn holds the crops of its turn's valid calls
        shown = [len(s.images) for s in item.segments if s.role == "tool"]
        answered = [turn for turn in item.turns if turn.tool_tokens]
        assert shown == [sum(c.error is None for c in turn.calls) for turn in answered]
        assert len(item.segments[0].images) == 1
    first = episodes[0].turns[0].calls
    assert [c.error for c in first] == [None, "bad_box", "bad_json"]
    second = episodes[1].turns[0].calls
    assert second[0].box_orig == [0, 0, 220, 400]  # clamped to the image
    grown = second[1].box_orig
    assert grown[2] - grown[0] == grown[3] - grown[1] == frames.BACKBONES[kind].factor  # grown to one token
    assert episodes[2].turns[0].calls[0].error == "unclosed"
    # the episodes with a tool turn went on with the model, which saw the crops (images beyond the view)
    assert all(len(item.turns) >= 2 for item in episodes[:3])


def test_hf_refuses_images_its_processor_would_resize(tiny_qwen2_5_vl):
    model = load_backend("hf", tiny_qwen2_5_vl)  # the checkpoint's own max_pixels: 448 x 448
    item = episode("q", size=(1200, 900), budget=1024, processor=model.processor)
    with pytest.raises(ValueError, match="max_pixels"):
        model.generate([item.request()], 4)


def test_hf_samples_when_asked(tiny_qwen2_5_vl):
    from locus_agent.backends import Sampling

    text = load_processor(tiny_qwen2_5_vl).apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    greedy = load_backend("hf", tiny_qwen2_5_vl)
    sampled = load_backend("hf", tiny_qwen2_5_vl, sampling=Sampling(temperature=5.0, seed=1))
    runs = [sampled.generate([Request(text)] * 3, 16) for _ in range(2)]
    # greedy rows of one prompt agree; hot sampling rows differ, and the seed makes the call repeatable
    assert len({g.text for g in greedy.generate([Request(text)] * 3, 16)}) == 1
    assert len({g.text for g in runs[0]}) > 1 and [g.text for g in runs[0]] == [g.text for g in runs[1]]


def decode_data_url(url: str) -> Image.Image:
    assert url.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))


def test_openai_backend_against_a_local_server():
    answers = iter(
        [
            completion(think() + call([100, 100, 400, 300], "sign"), completion_tokens=31),
            completion("<answer>C</answer>"),
        ]
    )
    with FakeServer(lambda body: next(answers)) as server:
        backend = OpenAIBackend("served", base_url=server.url)
        item = episode("q1", size=(900, 600), coord_frame="qwen3_vl", budget=1024)
        run_episodes([item], backend, LoopConfig(max_new_tokens=77), progress=False)
    assert item.end_reason == "answer" and item.answer == "C"
    assert item.turns[0].num_tokens == 31  # the server's usage count
    first, second = server.requests
    # greedy, the model name and the per-turn budget as asked
    assert (first["model"], first["temperature"], first["max_tokens"]) == ("served", 0.0, 77)
    # the first turn: system text, then the image (as a PNG data URL, the view's size) before the question
    system, user = first["messages"]
    assert system == {"role": "system", "content": item.messages[0]["content"]}
    assert user["content"][1] == {"type": "text", "text": "What colour is the sign?"}
    assert decode_data_url(user["content"][0]["image_url"]["url"]).size == item.view.image.size
    # the second turn carries the whole conversation: the model's turn and the tool turn with the crop
    roles = [m["role"] for m in second["messages"]]
    assert roles == ["system", "user", "assistant", "user"]
    assert second["messages"][2]["content"] == item.turns[0].text
    tool_parts = second["messages"][3]["content"]
    assert [p["type"] for p in tool_parts] == ["text", "image_url", "text", "text"]
    crop = decode_data_url(tool_parts[1]["image_url"]["url"])
    assert crop.size == item.segments[2].images[0].size and tool_parts[2]["text"].startswith("Zoomed in")


@pytest.mark.parametrize("status, hint", [(404, "check --base-url and --model"), (401, "OPENAI_API_KEY")])
def test_openai_backend_fatal_answers_are_one_line_errors(status, hint):
    # a wrong model name or key fails every request alike: stop with the fix, not a traceback per question
    with FakeServer(lambda body: (status, {"error": {"message": "nope"}})) as server:
        backend = OpenAIBackend("served", base_url=server.url, max_retries=0)
        with pytest.raises(UserError, match=hint) as error:
            backend.generate([episode("q1").request()], 8)
    assert "\n" not in str(error.value)


def test_openai_backend_server_errors_after_retries_are_one_line_errors():
    # a server that keeps failing (500) after the SDK's retries ends the run with a line saying a rerun resumes
    with FakeServer(lambda body: (500, {"error": {"message": "overloaded"}})) as server:
        backend = OpenAIBackend("served", base_url=server.url, max_retries=1)
        with pytest.raises(UserError, match="answered 500 after the SDK's retries; rerun") as error:
            backend.generate([episode("q1").request()], 8)
        assert len(server.requests) == 2  # the first try and one retry
    assert "\n" not in str(error.value)


def test_openai_backend_names_an_unreachable_server():
    # nothing listens on port 9: the user learns which URL was tried
    backend = OpenAIBackend("served", base_url="http://127.0.0.1:9/v1", max_retries=0, timeout=5)
    with pytest.raises(UserError, match="cannot reach the server at http://127.0.0.1:9/v1"):
        backend.generate([episode("q1").request()], 8)


def test_replay_unknown_id_is_one_line_naming_file_and_id(replay_file):
    path = replay_file([{"id": "known", "turns": ["<answer>A</answer>"]}])
    backend = ReplayBackend(path)
    with pytest.raises(UserError) as error:
        backend.check_ids(["known", "missing-7"])
    message = str(error.value)
    assert str(path) in message and "'missing-7'" in message and "\n" not in message
    # the same error when a run reaches the question
    with pytest.raises(UserError, match="missing-7"):
        run_episodes([episode("missing-7")], backend, LoopConfig(), progress=False)


@pytest.mark.parametrize(
    "content, where",
    [
        ('{"id": "a", "turns": ["x"]}\n{"id": "b", "turns": "x"}\n', ":2:"),  # turns not a list
        ('{"turns": ["x"]}\n', ":1:"),  # no id
        ('{"id": "a", "turns": ["x"]}\nnot json\n', ":2:"),  # a broken line
    ],
)
def test_replay_file_errors_name_file_and_line(tmp_path, content, where):
    # a broken replay file is found before the run, at the line to fix
    path = tmp_path / "r.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(UserError, match=f"{path}{where}"):
        ReplayBackend(path)


def test_replay_missing_file_is_a_user_error(tmp_path):
    # a mistyped --replay path is a one-line error
    with pytest.raises(UserError, match="not found"):
        ReplayBackend(tmp_path / "none.jsonl")


@require_gpu
@require_vllm
def test_vllm_backend_runs_an_episode(tiny_qwen2_5_vl, replay_file):
    # GPU only: the same loop through vLLM (one prompt image plus up to two crops)
    backend = load_backend("vllm", tiny_qwen2_5_vl, limit_images=3, gpu_memory_utilization=0.3)
    item = episode("q1", processor=backend.processor, budget=BUDGET, crop_tokens=BUDGET)
    run_episodes([item], backend, LoopConfig(max_turns=2, max_new_tokens=8), progress=False)
    assert item.end_reason in END_REASONS and all(t.num_tokens >= 1 for t in item.turns)
