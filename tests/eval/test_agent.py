"""``locus-eval agent``: hand-checkable numbers from recorded turns, crop modes, resume, tiny models, bad input."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from locus_agent.loop import END_REASONS
from locus_eval import benchmarks
from locus_eval.agent import crop_file_name
from locus_eval.cli import main
from locus_reward import frames

from .eval_helpers import write_hrbench, write_vstar, write_vstar_jsonl


LOCUS_EVAL = Path(sys.executable).with_name("locus-eval")  # the installed command, as a user runs it
BUDGET = "280"  # visual tokens of the view: 560x392 images are seen as they are, 1120x784 at half size


def call(box, label="thing"):
    arguments = {"bbox_2d": box} if label is None else {"bbox_2d": box, "label": label}
    return "<tool_call>" + json.dumps({"name": "image_zoom_in_tool", "arguments": arguments}) + "</tool_call>"


def answer(letter):
    return f"<think>I see it.</think><answer>{letter}</answer>"


@pytest.fixture(scope="module")
def vstar(tmp_path_factory):
    """Four V* questions with known boxes; COCO [x, y, w, h] boxes become corners in original pixels."""
    root = tmp_path_factory.mktemp("agent") / "vstar"
    colours = ["red", "green", "blue", "white"]
    write_vstar(
        root,
        {
            "direct_attributes": [
                # seen at half size (1120x784 -> 560x392 at 280 tokens); GT [56, 56, 168, 168]
                {"question": "What colour is the cup?", "options": colours, "width": 1120, "height": 784,
                 "bbox": [[56, 56, 112, 112]]},
                {"question": "What colour is the hat?", "options": colours, "width": 560, "height": 392,
                 "bbox": [[56, 56, 112, 112]]},
            ],
            "relative_position": [
                {"question": "Is the cup left of the hat?", "options": ["yes", "no"], "width": 560, "height": 392,
                 "bbox": [[28, 28, 56, 56], [336, 224, 56, 56]]},
                {"question": "Is the dog left of the cat?", "options": ["yes", "no"], "width": 560, "height": 392},
            ],
        },
    )  # fmt: skip
    return root


@pytest.fixture(scope="module")
def letters(vstar):
    """The right letter of each question after bench's seeded option shuffle, and a wrong one."""
    items = benchmarks.load_vstar(vstar, seed=0)
    return {item.name: (item.answer, "A" if item.answer != "A" else "B") for item in items}


@pytest.fixture
def replay(tmp_path, letters):
    """sa_0: one crop exactly on its GT box, then right; sa_1: a crop half on its GT plus a malformed call, then
    wrong; relative_position/sa_0: right without a call; relative_position/sa_1: no answer at all."""
    turns = {
        "direct_attributes/sa_0": ["<think>Too small.</think>" + call([28, 28, 84, 84], "cup"),
                                   answer(letters["direct_attributes/sa_0"][0])],
        "direct_attributes/sa_1": ["<think>Too small.</think>" + call([112, 56, 224, 168], "hat") + call([1, 2, 3]),
                                   answer(letters["direct_attributes/sa_1"][1])],
        "relative_position/sa_0": [answer(letters["relative_position/sa_0"][0])],
        "relative_position/sa_1": ["I am not sure."],
    }  # fmt: skip
    path = tmp_path / "replay.jsonl"
    path.write_text("".join(json.dumps({"id": k, "turns": v}) + "\n" for k, v in turns.items()), encoding="utf-8")
    return path


def run_agent(data, replay, out, *extra, benchmark="vstar"):
    main(["agent", "--benchmark", benchmark, "--data", str(data), "--backend", "replay", "--replay", str(replay),
          "--coord-frame", "qwen2_5_vl", "--max-visual-tokens", BUDGET, "--out", str(out), *extra])  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    lines = (out / "trajectories.jsonl").read_text(encoding="utf-8").splitlines()
    return metrics, {record["id"]: record for record in map(json.loads, lines)}


def test_replay_on_vstar_reproduces_hand_computed_numbers(vstar, replay, tmp_path):
    metrics, records = run_agent(vstar, replay, tmp_path / "run", "--save-crops")
    # accuracy: sa_0 and relative_position/sa_0 right, sa_1 wrong, relative_position/sa_1 unanswered -> 2 of 4
    assert metrics["accuracy"] == 0.5 and metrics["n"] == 4
    assert metrics["by_category"] == {"direct_attributes": 0.5, "relative_position": 0.5}
    # two calls cut a crop (one per direct_attributes question), one malformed call; turns 2 + 2 + 1 + 1
    assert metrics["tool_calls_mean"] == 2 / 4 and metrics["invalid_calls_mean"] == 1 / 4
    assert metrics["turns_mean"] == 6 / 4 and metrics["crop_count"] == 2
    # crop IoU: 1 (on the GT box) and 1/3 (half of it: 112*56 / (2*112*112 - 112*56)); overlap 1 and 0.5
    assert metrics["crop_iou_mean"] == pytest.approx((1 + 1 / 3) / 2)
    assert metrics["crop_overlap_mean"] == pytest.approx(0.75)
    # bbox ratio: 112x112 crops of a 1120x784 and a 560x392 image; each 4x4 = 16 tokens at 28 px a token
    assert metrics["bbox_ratio_mean"] == pytest.approx((112 * 112 / (1120 * 784) + 112 * 112 / (560 * 392)) / 2)
    assert metrics["crop_visual_tokens_mean"] == 16 and metrics["view_visual_tokens_mean"] == 280
    assert metrics["no_answer_rate"] == 0.25 and metrics["end_reasons"] == {"answer": 0.75, "no_action": 0.25}
    assert 0 <= metrics["seconds_per_question"] < 5
    # the box written in the half-size view maps to twice its coordinates in the original
    (first,) = records["direct_attributes/sa_0"]["turns"][0]["calls"]
    assert first["box_view"] == [28, 28, 84, 84] and first["box_orig"] == [56, 56, 168, 168]
    assert records["direct_attributes/sa_0"]["view_size"] == [560, 392]
    assert records["direct_attributes/sa_0"]["image_size"] == [1120, 784]
    good, bad = records["direct_attributes/sa_1"]["turns"][0]["calls"]
    assert good["iou"] == pytest.approx(1 / 3) and good["overlap"] == 0.5 and bad["error"] == "bad_box"
    assert [r["correct"] for r in records.values()] == [True, False, True, False]
    assert records["relative_position/sa_1"]["prediction"] is None
    # the saved crops are the original's regions as cut, pixel for pixel, named <id>_<turn>.png with "/" encoded
    crops = tmp_path / "run" / "crops"
    assert sorted(p.name for p in crops.iterdir()) == [
        "direct_attributes%2Fsa_0_1.png",
        "direct_attributes%2Fsa_1_1.png",
    ]
    for name, box in (("direct_attributes/sa_0", (56, 56, 168, 168)), ("direct_attributes/sa_1", (112, 56, 224, 168))):
        original = Image.open(vstar / f"{name}.jpg").convert("RGB")
        saved = Image.open(crops / crop_file_name(name, 1))
        assert saved.size == (112, 112) and np.array_equal(np.asarray(saved), np.asarray(original.crop(box)))
    # the table in percent, the picture of the first episodes
    table = (tmp_path / "run" / "table.md").read_text(encoding="utf-8")
    assert "| Attr | Spatial | Overall |" in table and "| 50.0 | 50.0 | 50.0 | 0.50 | 1.50 | 66.7 | 75.0 |" in table
    with Image.open(tmp_path / "run" / "trajectories.png") as picture:
        assert picture.width > 480 and picture.height > 4 * 150


def test_crop_file_names_never_collide():
    # ids are percent-encoded and further calls of a turn get ".<call>": distinct (id, turn, call) -> distinct names
    keys = ["a", "a_1", "a/1", "a%2F1", "a_1.2", "a.1"]
    names = [crop_file_name(key, turn, c) for key in keys for turn in (1, 2, 12) for c in (1, 2)]
    assert len(set(names)) == len(names) and all("/" not in name for name in names)


def test_gt_and_noise_modes_change_the_crops_and_nothing_else(vstar, replay, tmp_path):
    runs = {mode: run_agent(vstar, replay, tmp_path / mode, "--save-crops", "--crop-mode", mode)
            for mode in ("model", "gt", "noise")}  # fmt: skip

    def without_crops(record):
        turns = [{**t, "seconds": 0, "calls": [{k: v for k, v in c.items() if k not in ("crop_box", "visual_tokens")}
                                               for c in t["calls"]]} for t in record["turns"]]  # fmt: skip
        return {**record, "seconds": 0, "turns": turns, "response_tokens": 0}

    model_metrics, model_records = runs["model"]
    for mode in ("gt", "noise"):
        metrics, records = runs[mode]
        # same replayed texts, same boxes, same answers and scores
        assert {k: without_crops(r) for k, r in records.items()} == {
            k: without_crops(r) for k, r in model_records.items()
        }
        for key in ("accuracy", "tool_calls_mean", "crop_iou_mean", "crop_overlap_mean", "bbox_ratio_mean"):
            assert metrics[key] == model_metrics[key], (mode, key)
    name = crop_file_name("direct_attributes/sa_1", 1)
    model, gt, noise = (np.asarray(Image.open(tmp_path / mode / "crops" / name)) for mode in ("model", "gt", "noise"))
    original = Image.open(vstar / "direct_attributes" / "sa_1.jpg").convert("RGB")
    # gt: the GT region [56, 56, 168, 168] instead of the model's [112, 56, 224, 168]
    assert np.array_equal(gt, np.asarray(original.crop((56, 56, 168, 168)))) and not np.array_equal(gt, model)
    (gt_call, _) = runs["gt"][1]["direct_attributes/sa_1"]["turns"][0]["calls"]
    assert gt_call["crop_box"] == [56, 56, 168, 168] and gt_call["box_orig"] == [112, 56, 224, 168]
    # noise: the same size, uniform noise (mean near 127.5, nothing like the picture), the same on a rerun
    assert noise.shape == model.shape and abs(noise.mean() - 127.5) < 5 and np.abs(noise - model).mean() > 40
    _, again = run_agent(vstar, replay, tmp_path / "noise2", "--save-crops", "--crop-mode", "noise")
    assert np.array_equal(noise, np.asarray(Image.open(tmp_path / "noise2" / "crops" / name)))


def test_a_rerun_resumes_and_refuses_other_settings(vstar, replay, tmp_path, capsys):
    out = tmp_path / "run"
    run_agent(vstar, replay, out, "--limit", "2")
    head = (out / "trajectories.jsonl").read_bytes()
    assert head.count(b"\n") == 2
    # a run killed while writing leaves a torn line; the rerun drops it and runs only the missing questions
    with (out / "trajectories.jsonl").open("ab") as file:
        file.write(b'{"index": 2, "id": "relative_posi')
    metrics, records = run_agent(vstar, replay, out)
    data = (out / "trajectories.jsonl").read_bytes()
    assert data.startswith(head) and data.count(b"\n") == 4 and len(records) == 4
    assert metrics["n"] == 4 and metrics["accuracy"] == 0.5
    # other settings than the saved ones: refused in one line naming generation.json
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        run_agent(vstar, replay, out, "--max-turns", "5")
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and "\n" not in err and "generation.json" in err and "max_turns" in err


def test_hrbench_accuracy_is_averaged_per_cycle_and_has_no_crop_iou(tmp_path):
    rows = [
        {"question": "Q0", "answer": "A", "category": "single", "options": ["a", "b", "c", "d"], "cycle": "c1"},
        {"question": "Q1", "answer": "B", "category": "cross", "options": ["a", "b", "c", "d"], "cycle": "c1"},
        {"question": "Q2", "answer": "C", "category": "single", "options": ["a", "b", "c", "d"], "cycle": "c2"},
    ]
    tsv = write_hrbench(tmp_path / "hr_bench_4k.tsv", rows)
    # ids are the TSV's index, as bench reads them; Q0 right after a crop, Q1 wrong, Q2 right
    lines = [{"id": "0", "turns": ["<think>.</think>" + call([0, 0, 28, 28]), answer("A")]},
             {"id": "1", "turns": [answer("C")]}, {"id": "2", "turns": [answer("C")]}]  # fmt: skip
    replay = tmp_path / "replay.jsonl"
    replay.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    metrics, records = run_agent(tsv, replay, tmp_path / "run", benchmark="hrbench")
    # cycle c1: 1 of 2, cycle c2: 1 of 1 -> (0.5 + 1) / 2, not the plain 2 of 3
    assert metrics["accuracy"] == 0.75 and metrics["by_cycle"] == {"c1": 0.5, "c2": 1.0}
    assert metrics["by_category"] == {"cross": 0.0, "single": 1.0}
    # HR-Bench has no GT boxes: no crop IoU, said so; the crop's share of the image still counts: the 64x48 image
    # is seen as 56x56 (the processor's min_pixels), so [0, 0, 28, 28] is 32x24 original pixels, grown to 32x28
    # (a crop is at least one 28-px token a side)
    assert metrics["crop_iou_mean"] is None and "not reproducible" in metrics["crop_iou_note"]
    assert records["0"]["view_size"] == [56, 56] and records["0"]["turns"][0]["calls"][0]["box_orig"] == [0, 0, 32, 28]
    assert metrics["bbox_ratio_mean"] == pytest.approx(32 * 28 / (64 * 48))
    table = (tmp_path / "run" / "table.md").read_text(encoding="utf-8")
    assert "| FCP | FSP | Overall |" in table and "not reproducible" in table


def test_openai_backend_runs_the_same_episodes_against_a_server(vstar, tmp_path):
    from tests.agent.fake_openai import FakeServer, completion

    def reply(body):
        # the first turn of a question calls the tool (Qwen3-VL frame, 0-1000), the second answers
        if len(body["messages"]) == 2:
            return completion("<think>Zoom.</think>" + call([100, 100, 400, 300]))
        return completion(answer("A"))

    out = tmp_path / "run"
    with FakeServer(reply) as server:
        main(["agent", "--benchmark", "vstar", "--data", str(vstar), "--backend", "openai", "--base-url", server.url,
              "--model", "served", "--coord-frame", "qwen3_vl", "--max-visual-tokens", BUDGET, "--limit", "1",
              "--out", str(out)])  # fmt: skip
    (record,) = map(json.loads, (out / "trajectories.jsonl").read_text(encoding="utf-8").splitlines())
    # two requests, the second holding the crop; 0-1000 of the 1120x784 original is [112, 78.4, 448, 235.2]
    assert len(server.requests) == 2 and record["end_reason"] == "answer" and record["prediction"] == "A"
    (crop,) = record["turns"][0]["calls"]
    assert crop["box_orig"] == [112, 78, 448, 236]
    # against the GT [56, 56, 168, 168]: 56 x 90 shared, 336 x 158 + 112 x 112 - 5040 in all
    assert crop["iou"] == pytest.approx(56 * 90 / (336 * 158 + 112 * 112 - 56 * 90))
    parts = server.requests[1]["messages"][3]["content"]
    assert [part["type"] for part in parts] == ["text", "image_url", "text", "text"]


@pytest.fixture(scope="module")
def synth_manifest(tmp_path_factory):
    from locus_data.synth_vqa import synth_vqa

    return synth_vqa(tmp_path_factory.mktemp("synth") / "vqa", 2, seed=0, progress=False)


def test_hf_end_to_end_with_a_random_model(tiny_checkpoint, synth_manifest, tmp_path):
    kind, checkpoint = tiny_checkpoint
    out = tmp_path / "run"
    # whatever a random model writes (prose, broken calls, nothing) ends its episode without crashing the run
    main(["agent", "--benchmark", "manifest", "--data", str(synth_manifest), "--model", str(checkpoint),
          "--backend", "hf", "--max-visual-tokens", "1024", "--max-crop-visual-tokens", "256", "--max-turns", "2",
          "--max-new-tokens", "8", "--out", str(out)])  # fmt: skip
    records = [json.loads(line) for line in (out / "trajectories.jsonl").read_text(encoding="utf-8").splitlines()]
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert len(records) == 2 and metrics["n"] == 2 and metrics["agent"]["coord_frame"] == kind
    factor = frames.BACKBONES[kind].factor
    for record in records:
        assert record["end_reason"] in END_REASONS and 1 <= len(record["turns"]) <= 2
        assert all(1 <= turn["num_tokens"] <= 8 for turn in record["turns"])
        # the 3-4K canvas is seen at the 1,024-token budget, by the processor's own rule
        width, height = record["image_size"]
        seen = frames.smart_resize(height, width, factor, 4096 if kind == "qwen3_vl" else 3136, 1024 * factor**2)
        assert record["view_size"] == [seen[1], seen[0]] and record["view_tokens"] <= 1024
        assert record["correct"] == (record["choice"] == record["answer"]) and len(record["gt_boxes"]) == 3
    for key in ("accuracy", "tool_calls_mean", "turns_mean", "no_answer_rate", "seconds_per_question"):
        assert metrics[key] is not None and metrics[key] >= 0, key
    assert 0 <= metrics["accuracy"] <= 1 and 0 <= metrics["no_answer_rate"] <= 1
    assert (out / "table.md").is_file() and (out / "trajectories.png").is_file()


def agent_cli(*args):
    """The installed command; returns its exit status and stderr."""
    done = subprocess.run([str(LOCUS_EVAL), "agent", *map(str, args)], capture_output=True, text=True)
    return done.returncode, done.stderr.strip()


def assert_one_line(status, err, *needles):
    assert status == 2 and err.startswith("locus-eval agent: error: ") and "\n" not in err, err
    assert "Traceback" not in err and all(needle in err for needle in needles), err


def write_manifest(path, rows, image_size=(64, 48)):
    (path.parent / "images").mkdir(parents=True, exist_ok=True)
    Image.new("RGB", image_size, (90, 90, 90)).save(path.parent / "images" / "a.png")
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "case",
    [
        "missing image",
        "manifest without answer",
        "boxes outside",
        "unknown replay ids",
        "replay lacks a question",
        "max turns 0",
        "gt on hrbench",
    ],
)
def test_bad_input_is_one_line_naming_the_file_or_flag(case, vstar, replay, tmp_path):
    common = ["--backend", "replay", "--replay", replay, "--coord-frame", "qwen2_5_vl", "--out", tmp_path / "out"]
    if case == "missing image":
        # a test_questions.jsonl pointing at an image that is not there names the image
        questions = write_vstar_jsonl(tmp_path / "v", [{"category": "direct_attributes", "question": "Q?",
                                                        "options": ["a", "b"], "label": "A"}])  # fmt: skip
        (tmp_path / "v" / "direct_attributes" / "sa_0.jpg").unlink()
        assert_one_line(*agent_cli("--benchmark", "vstar", "--data", questions, *common), "sa_0.jpg", "not found")
    elif case == "manifest without answer":
        manifest = write_manifest(tmp_path / "m.jsonl", [{"id": "q", "image": "images/a.png", "question": "Q?"}])
        assert_one_line(*agent_cli("--benchmark", "manifest", "--data", manifest, *common), "m.jsonl:1", "answer")
    elif case == "boxes outside":
        row = {"id": "q", "image": "images/a.png", "question": "Q?", "answer": "x", "boxes": [[10, 10, 90, 20]]}
        manifest = write_manifest(tmp_path / "m.jsonl", [row])
        assert_one_line(*agent_cli("--benchmark", "manifest", "--data", manifest, *common), "m.jsonl:1", "boxes")
    elif case == "unknown replay ids":
        other = tmp_path / "other.jsonl"
        other.write_text(replay.read_text() + json.dumps({"id": "not/a_question", "turns": []}) + "\n")
        status, err = agent_cli("--benchmark", "vstar", "--data", vstar, *common[:2], "--replay", other, *common[4:])
        assert_one_line(status, err, str(other), "not/a_question")
    elif case == "replay lacks a question":
        short = tmp_path / "short.jsonl"
        short.write_text(replay.read_text().splitlines()[0] + "\n")
        status, err = agent_cli("--benchmark", "vstar", "--data", vstar, *common[:2], "--replay", short, *common[4:])
        assert_one_line(status, err, str(short), "direct_attributes/sa_1")
    elif case == "max turns 0":
        assert_one_line(
            *agent_cli("--benchmark", "vstar", "--data", vstar, *common, "--max-turns", "0"), "--max-turns"
        )
    else:
        tsv = write_hrbench(tmp_path / "hr.tsv", [{"question": "Q", "answer": "A", "category": "single",
                                                   "options": ["a", "b", "c", "d"], "cycle": "c1"}])  # fmt: skip
        status, err = agent_cli("--benchmark", "hrbench", "--data", tsv, *common, "--crop-mode", "gt")
        assert_one_line(status, err, "--crop-mode gt", "HR-Bench")
    # nothing is written, so the fixed command runs with its own settings
    assert not (tmp_path / "out").exists()


def test_vllm_refuses_budgets_its_checkpoint_processor_would_resize(tiny_qwen2_5_vl, vstar, tmp_path, capsys):
    # vLLM takes the checkpoint's processor as it is (448 x 448 pixels here): a 1,024-token view would be resized
    # and every box would move, so the run stops before vLLM is even imported
    with pytest.raises(SystemExit):
        main(["agent", "--benchmark", "vstar", "--data", str(vstar), "--model", str(tiny_qwen2_5_vl),
              "--backend", "vllm", "--max-visual-tokens", "1024", "--out", str(tmp_path / "out")])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "max_pixels 200704" in err and "--max-visual-tokens" in err
    assert not (tmp_path / "out").exists()
