"""``locus-eval bench``: loaders for each public layout, the letter-extraction cascade, and the scoring rules."""

import json
import re

import pytest

from locus_agent import backends
from locus_agent.backends import Generation
from locus_eval import benchmarks
from locus_eval.benchmarks import extract_choice
from locus_eval.cli import main

from .eval_helpers import (
    jpeg_bytes,
    scene,
    write_hrbench,
    write_refcoco_jsonl,
    write_refcoco_sentences,
    write_vstar,
    write_vstar_jsonl,
)


OPTIONS = ["red", "green", "blue", "white"]


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("B", "B"),  # rule 1: the bare letter lmms-eval's instruction asks for
        ("(C)", "C"),
        ("D.", "D"),
        ("The answer is C.", "C"),  # rule 2: explicit statement
        ("Answer: (A)", "A"),
        ("Looking closely, the best option is D because of the shade.", "D"),
        ("B. green", "B"),  # rule 3: leading letter with a delimiter
        ("(A) red, since the car is bright", "A"),
        ("It looks like (B) to me", "B"),  # rule 4: one parenthesized letter
        ("It is blue.", "C"),  # rule 5: option text, no letter at all
        ("A white car.", "D"),  # "A" is an article here; the option text wins over the bare letter
        ("I would say D", "D"),  # rule 6: one standalone capital letter
        ("<think>A or B? Red is A.</think><answer>B</answer>", "B"),  # reasoning is ignored
        ("Either (A) or (B).", None),  # two letters: undecidable, counted wrong
        ("It is green or blue.", None),  # two option texts
        ("I cannot tell.", None),  # "I" is a capital letter but not a valid choice
        ("E", None),  # not among four options
    ],
)
def test_extract_choice_cascade(response, expected):
    assert extract_choice(response, OPTIONS) == expected


def test_two_option_questions_only_accept_a_and_b():
    # V* relative-position questions have two options: a "C" is not an answer to them
    assert extract_choice("C", ["left", "right"]) is None
    assert extract_choice("right", ["left", "right"]) == "B"


def test_vstar_shuffle_is_seeded_and_tracks_the_correct_option(tmp_path):
    entries = [
        {"question": f"What colour is thing {i}?", "options": ["red", "green", "blue", "white"]} for i in range(8)
    ]
    root = write_vstar(tmp_path / "vstar", {"direct_attributes": entries})
    items = benchmarks.load_vstar(root, seed=0)
    # the raw file lists the right option first; after shuffling the letter must still point at it
    assert all(item.options[ord(item.answer) - ord("A")] == "red" for item in items)
    assert len({item.answer for item in items}) > 1, "answers must not all be A after shuffling"
    assert [i.options for i in benchmarks.load_vstar(root, seed=0)] == [i.options for i in items]
    assert [i.options for i in benchmarks.load_vstar(root, seed=1)] != [i.options for i in items]
    assert items[0].boxes == [[8.0, 8.0, 24.0, 24.0]]  # COCO [x, y, w, h] -> corners


class FakeBackend:
    """Answers from the prompt text, so scoring can be checked without a model."""

    def __init__(self, answer):
        self.answer = answer
        self.prompts = []

    def generate(self, requests, max_new_tokens):
        self.prompts += [r.prompt for r in requests]
        return [Generation(self.answer(r), 1, True) for r in requests]


@pytest.fixture
def fake_backend(monkeypatch):
    def install(answer):
        fake = FakeBackend(answer)
        monkeypatch.setattr(backends, "load_backend", lambda *args, **kwargs: fake)
        return fake

    return install


def bench(kind, data, model, out, *extra):
    main(["bench", "--benchmark", kind, "--data", str(data), "--model", str(model), "--out", str(out),
          "--backend", "hf", *extra])  # fmt: skip


def test_vstar_bench_scores_per_category(tmp_path, tiny_qwen2_5_vl, fake_backend):
    root = write_vstar(
        tmp_path / "vstar",
        {
            "direct_attributes": [
                {"question": f"Colour {i}?", "options": ["red", "green", "blue", "pink"]} for i in range(4)
            ],
            "relative_position": [{"question": f"Side {i}?", "options": ["left", "right"]} for i in range(2)],
        },
    )

    def answer(request):
        # pick the letter of the option that was first in the raw file, i.e. always right
        letters = dict(re.findall(r"^([A-D])\. (\w+)$", request.prompt, re.M))
        return next(letter for letter, text in letters.items() if text in ("red", "left"))

    fake = fake_backend(answer)
    bench("vstar", root, tiny_qwen2_5_vl, tmp_path / "run")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["accuracy"] == 1.0 and metrics["by_category"] == {
        "direct_attributes": 1.0,
        "relative_position": 1.0,
    }
    assert benchmarks.MCQ_INSTRUCTION in fake.prompts[0] and "<|image_pad|>" in fake.prompts[0]
    assert (tmp_path / "run" / "table.md").read_text().startswith("| Model | Overall | direct_attributes |")


def test_hrbench_averages_accuracy_per_cycle(tmp_path, tiny_qwen2_5_vl, fake_backend):
    # the fake always answers A. Cycle 1: one question, right (100%). Cycle 2: three, one right (33.3%).
    # Averaged per cycle: 66.7%; pooled over questions it would be 50%, which is not how HR-Bench reports.
    rows = [
        {"question": "q0", "answer": "A", "category": "single", "cycle": "cycle_1", "options": OPTIONS},
        {"question": "q1", "answer": "A", "category": "single", "cycle": "cycle_2", "options": OPTIONS},
        {"question": "q2", "answer": "B", "category": "cross", "cycle": "cycle_2", "options": OPTIONS},
        {"question": "q3", "answer": "C", "category": "cross", "cycle": "cycle_2", "options": OPTIONS},
    ]
    tsv = write_hrbench(tmp_path / "hr_bench_4k.tsv", rows)
    fake_backend(lambda request: "A")
    bench("hrbench", tsv, tiny_qwen2_5_vl, tmp_path / "run")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["by_cycle"] == {"cycle_1": 1.0, "cycle_2": pytest.approx(1 / 3)}
    assert metrics["accuracy"] == pytest.approx(2 / 3)
    assert metrics["by_category"] == {"cross": 0.0, "single": 1.0}


def test_refcoco_reads_qwen2_5_pixels_in_the_seen_frame(tmp_path, tiny_qwen2_5_vl, fake_backend):
    # 500 x 375 image under the tiny processor's limits (56^2..448^2 px): the model writes pixels of the image it
    # sees, whose size the reward's seen_size gives. A box written in that frame must score IoU 1.
    from locus_reward.frames import seen_size

    data = write_refcoco_jsonl(tmp_path, [{"size": (500, 375), "bbox": [100, 50, 200, 150], "refexp": "the dog"}])
    seen_w, seen_h = seen_size(500, 375, "qwen2_5_vl", 3136, 4194304, 56 * 56, 448 * 448)
    box = [100 * seen_w / 500, 50 * seen_h / 375, 300 * seen_w / 500, 200 * seen_h / 375]
    fake_backend(lambda request: json.dumps({"bbox_2d": box}))
    bench("refcoco", data, tiny_qwen2_5_vl, tmp_path / "run")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["acc50"] == 1.0 and metrics["mean_iou"] == pytest.approx(1.0)


def test_refcoco_never_rereads_pixels_as_a_1000_grid(tmp_path):
    # A 640 x 480 image whose GT box is [64, 48, 320, 240]. The model writes [100, 100, 500, 500]: right only if
    # read as a 0..1000 grid (Qwen3-VL). Under Qwen2.5-VL's pixel convention it is a different box and must score
    # as one; a best-of-two-readings scorer would wrongly give it IoU 1.
    item = benchmarks.Item(index=0, image=None, question="x", boxes=[[64.0, 48.0, 320.0, 240.0]])
    predictions = {0: {"response": "[100, 100, 500, 500]"}}
    limits = {"min_pixels": 3136, "max_pixels": 4194304}
    pixels = benchmarks.score_grounding([item], predictions, {0: (640, 480)}, "qwen2_5_vl", limits)
    relative = benchmarks.score_grounding([item], predictions, {0: (640, 480)}, "qwen3_vl", limits)
    assert pixels[0]["iou"] < 0.5
    assert relative[0]["iou"] == pytest.approx(1.0)


def test_refcoco_parquet_layout_gives_one_sample_per_expression(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    # lmms-eval's RefCOCO parquet: one row per object, "answer" lists its expressions; lmms-eval and the Qwen-VL /
    # InternVL scripts score each expression, so two objects with 3 + 2 expressions are 5 samples, not 2
    rows = [
        {"question_id": "7", "image": {"bytes": jpeg_bytes(scene(64, 48)), "path": None}, "question": "Describe.",
         "answer": ["left dog", "brown dog", "dog on the left"], "bbox": [1.0, 2.0, 10.0, 20.0], "file_name": "a.jpg"},
        {"question_id": "8", "image": {"bytes": jpeg_bytes(scene(64, 48, 1)), "path": None}, "question": "Describe.",
         "answer": ["cat", "left cat"], "bbox": [5.0, 5.0, 4.0, 4.0], "file_name": "b.jpg"},
    ]  # fmt: skip
    folder = tmp_path / "RefCOCOplus" / "data"
    folder.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), folder / "testA-00000-of-00001.parquet")
    loaded = benchmarks.read_refcoco(folder / "testA-00000-of-00001.parquet")
    assert [i.question for i in loaded.items] == ["left dog", "brown dog", "dog on the left", "cat", "left cat"]
    assert loaded.items[0].boxes == [[1.0, 2.0, 11.0, 22.0]] and loaded.items[4].boxes == [[5.0, 5.0, 9.0, 9.0]]
    assert (loaded.protocol["dataset"], loaded.protocol["split"]) == ("refcoco+", "testA")
    assert (loaded.protocol["objects"], loaded.protocol["expressions"]) == (2, 5)
    assert loaded.protocol["published_expressions"] == 5726  # refcoco+ testA, what refcoco+_bbox_rec_testA scores


def test_refcoco_per_sentence_jsonl_scores_every_expression(tmp_path, tiny_qwen2_5_vl, fake_backend, capsys):
    # The grounding scripts' layout: one line per sentence, corners, image size. The fake answers the GT box only for
    # expressions containing "left": 3 of 5 right (60%); scoring one expression per object would give 1 of 2 (50%).
    from locus_reward.frames import seen_size

    data = write_refcoco_sentences(
        tmp_path / "refcoco_val.jsonl",
        [
            {"size": (500, 375), "bbox": [100, 50, 300, 200], "sents": ["left dog", "brown dog", "dog on the left"]},
            {"size": (500, 375), "bbox": [10, 10, 110, 60], "sents": ["cat", "left cat"]},
        ],
    )
    seen_w, seen_h = seen_size(500, 375, "qwen2_5_vl", 3136, 4194304, 56 * 56, 448 * 448)
    gt = {"dog": [100, 50, 300, 200], "cat": [10, 10, 110, 60]}

    def answer(request):
        refexp = re.search(r'Locate "(.*)" in the image', request.prompt).group(1)
        x1, y1, x2, y2 = gt["dog" if "dog" in refexp else "cat"]
        box = [x1 * seen_w / 500, y1 * seen_h / 375, x2 * seen_w / 500, y2 * seen_h / 375]
        return json.dumps({"bbox_2d": box if "left" in refexp else [0, 0, 1, 1]})

    fake_backend(answer)
    bench("refcoco", data, tiny_qwen2_5_vl, tmp_path / "run", "--coord-frame", "qwen2_5_vl")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["n"] == 5 and metrics["objects"] == 2 and metrics["acc50"] == pytest.approx(0.6)
    assert metrics["protocol"]["layout"].startswith("per-sentence jsonl") and metrics["protocol"]["split"] == "val"
    assert "refcoco val (per-sentence jsonl" in capsys.readouterr().err  # counts printed per split
    table = (tmp_path / "run" / "table.md").read_text()
    assert "per-sentence jsonl" in table and "split: val" in table


def test_vstar_jsonl_keeps_the_file_order_and_records_the_protocol(tmp_path, tiny_qwen2_5_vl, fake_backend):
    # test_questions.jsonl lists options in its own order with a label; the right answer is not always A here, and
    # nothing may be shuffled (that is the lmms-eval protocol). The fake picks "red" wherever it is shown.
    entries = [
        {"category": "direct_attributes", "question": "Colour of the cup?", "options": ["blue", "red"], "label": "B"},
        {"category": "direct_attributes", "question": "Colour of the car?", "options": ["red", "pink"], "label": "A"},
        {"category": "relative_position", "question": "Is the red dot left?", "options": ["no", "red"], "label": "A"},
    ]
    data = write_vstar_jsonl(tmp_path / "vstar", entries)
    items = benchmarks.load_vstar(data)
    assert [i.options for i in items] == [e["options"] for e in entries] and [i.answer for i in items] == [
        "B",
        "A",
        "A",
    ]
    assert items[0].question == "Colour of the cup?"

    def answer(request):
        letters = {text: letter for letter, text in re.findall(r"^([A-D])\. (\w+)$", request.prompt, re.M)}
        return letters["red"]

    fake_backend(answer)
    bench("vstar", data, tiny_qwen2_5_vl, tmp_path / "run")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["by_category"] == {"direct_attributes": 1.0, "relative_position": 0.0}
    assert metrics["protocol"]["layout"] == "V* test_questions.jsonl"
    assert "as listed in the file" in (tmp_path / "run" / "table.md").read_text()


def test_vstar_folders_protocol_names_the_seed(tmp_path):
    root = write_vstar(tmp_path / "vstar", {"direct_attributes": [{"question": "Colour?", "options": OPTIONS}]})
    loaded = benchmarks.read_vstar(root, seed=3)
    assert "seed 3" in loaded.protocol["option_order"] and "folders" in loaded.protocol["layout"]


def test_hrbench_resolves_index_referenced_images_and_averages_per_cycle(tmp_path, tiny_qwen2_5_vl, fake_backend):
    # VLMEvalKit TSVs store an image once; the other rows of its cycle hold its index. The fake always answers A.
    # cycle_1: rows 0 (A, right) and 1 (B, wrong) = 1/2; cycle_2: rows 2, 3 (A, right) and 4 (C, wrong) = 2/3.
    # Per-cycle average (1/2 + 2/3) / 2 = 7/12; pooled it would be 3/5.
    rows = [
        {"question": "q0", "answer": "A", "category": "single", "cycle": "cycle_1", "options": OPTIONS},
        {"question": "q1", "answer": "B", "category": "cross", "cycle": "cycle_1", "options": OPTIONS},
        {
            "question": "q2",
            "answer": "A",
            "category": "single",
            "cycle": "cycle_2",
            "options": OPTIONS,
            "image_ref": 0,
        },
        {"question": "q3", "answer": "A", "category": "cross", "cycle": "cycle_2", "options": OPTIONS, "image_ref": 1},
        {"question": "q4", "answer": "C", "category": "cross", "cycle": "cycle_2", "options": OPTIONS, "image_ref": 0},
    ]
    tsv = write_hrbench(tmp_path / "hr_bench_4k.tsv", rows)
    loaded = benchmarks.read_hrbench(tsv)
    assert loaded.items[2].image == loaded.items[0].image == jpeg_bytes(scene(64, 48, seed=0))
    assert loaded.items[3].image == loaded.items[1].image and loaded.items[4].image == loaded.items[0].image
    assert loaded.protocol["images"] == {"base64": 2, "index_reference": 3}
    fake = fake_backend(lambda request: "A")
    bench("hrbench", tsv, tiny_qwen2_5_vl, tmp_path / "run")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["by_cycle"] == {"cycle_1": 0.5, "cycle_2": pytest.approx(2 / 3)}
    assert metrics["accuracy"] == pytest.approx(7 / 12)
    assert all("<|image_pad|>" in prompt for prompt in fake.prompts)  # every row reached the model with an image
    assert "averaged over cycles" in (tmp_path / "run" / "table.md").read_text()


@pytest.mark.parametrize(
    ("cell", "why"),
    [
        ("9", "image cell '9' is neither"),  # an index no row has
        ("1", "image cell '1' is neither"),  # a row that itself only holds a reference
        ("x" * 100, "neither base64 image bytes nor a row index"),  # valid base64 alphabet, but not an image
        ("%%%" * 40, "neither base64 image bytes nor a row index"),  # not base64 at all
    ],
)
def test_hrbench_bad_image_cell_names_the_row(tmp_path, capsys, cell, why):
    rows = [
        {"question": "q0", "answer": "A", "category": "single", "cycle": "c", "options": OPTIONS},
        {"question": "q1", "answer": "A", "category": "single", "cycle": "c", "options": OPTIONS, "image_ref": 0},
        {"question": "q2", "answer": "A", "category": "single", "cycle": "c", "options": OPTIONS, "image_cell": cell},
    ]
    tsv = write_hrbench(tmp_path / "hr_bench_4k.tsv", rows)
    with pytest.raises(SystemExit):
        bench("hrbench", tsv, tmp_path / "no_model", tmp_path / "run")
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"{tsv}: row index 2" in err and why in err


@pytest.mark.parametrize(
    ("benchmark", "make_data", "expected"),
    [
        # a new user's first try: the folder holding the TSVs instead of the TSV (was: IsADirectoryError traceback)
        ("hrbench", lambda tmp: tmp, "is a directory; --data for hrbench is an HR-Bench TSV file"),
        # a typo in the path (was: the bare path as the whole message)
        ("refcoco", lambda tmp: tmp / "refcoco_vall.parquet", "no such file or directory; --data for refcoco"),
        ("vstar", lambda tmp: tmp / "vstar_bench", "no such file or directory; --data for vstar is the V* folder"),
    ],
)
def test_bench_data_errors_are_one_line_and_name_the_fix(tmp_path, capsys, benchmark, make_data, expected):
    data = make_data(tmp_path)
    with pytest.raises(SystemExit):
        bench(benchmark, data, tmp_path / "no_model", tmp_path / "run")
    err = capsys.readouterr().err.strip()
    assert err.startswith("locus-eval bench: error: ") and err.count("\n") == 0
    assert str(data) in err and expected in err


def test_garbage_jsonl_names_the_file_and_line(tmp_path, capsys):
    # line 2 is cut off mid-object: the error must say which file and line, not a bare JSONDecodeError
    data = write_refcoco_jsonl(tmp_path, [{"size": (50, 40), "bbox": [5, 5, 10, 10], "refexp": "dog"}])
    data.write_text(data.read_text() + '{"image": "images/0.jpg", "bbox": [1, 2\n')
    with pytest.raises(SystemExit):
        bench("refcoco", data, tmp_path / "no_model", tmp_path / "run")
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"{data}:2: not a JSON line" in err


def test_vstar_bench_with_the_hf_backend(tmp_path, tiny_qwen2_5_vl):
    root = write_vstar(tmp_path / "vstar", {"direct_attributes": [{"question": "Colour?", "options": OPTIONS}]})
    bench("vstar", root, tiny_qwen2_5_vl, tmp_path / "run", "--max-new-tokens", "4")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["n"] == 1 and 0.0 <= metrics["accuracy"] <= 1.0
