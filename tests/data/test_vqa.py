"""The VQA manifest: reading, one-line errors naming file:line and field, writing; validate and preview on it."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from locus_data.cli import main
from locus_data.errors import UserError
from locus_data.vqa import MANIFEST_NAME, VqaItem, check_manifest, is_manifest, read_manifest, write_manifest
from locus_reward.lfpc import compute_score_stage2
from locus_reward.lfpc_ground_truth import loads


CHOICES = ["red", "green", "blue", "white"]


@pytest.fixture()
def folder(tmp_path):
    """A manifest folder with two 400 x 300 images and a good manifest of three questions."""
    (tmp_path / "images").mkdir()
    for name in ("a", "b"):
        Image.new("RGB", (400, 300), (120, 90, 60)).save(tmp_path / "images" / f"{name}.png")
    rows = [
        {"id": "q1", "image": "images/a.png", "question": "What colour?", "choices": CHOICES, "answer": "B",
         "boxes": [[10, 10, 20, 20], [0, 0, 100, 80]], "category": "attr"},
        {"id": "q2", "image": str(tmp_path / "images" / "b.png"), "question": "What is it?", "answer": "a cup"},
        {"id": "q3", "image": "images/a.png", "question": "Which?", "choices": ["x", "y"], "answer": "A"},
    ]  # fmt: skip
    write_lines(tmp_path / MANIFEST_NAME, rows)
    return tmp_path


def write_lines(path, rows) -> None:
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows))


def test_reads_fields_relative_and_absolute_images_and_extras(folder):
    first, second, third = read_manifest(folder)  # a folder means its manifest.jsonl
    assert (first.id, first.answer, first.choices, first.width, first.height) == ("q1", "B", tuple(CHOICES), 400, 300)
    assert first.boxes == ((10.0, 10.0, 20.0, 20.0), (0.0, 0.0, 100.0, 80.0))
    assert first.image == folder / "images" / "a.png" and first.extra == {"category": "attr"}
    assert second.image == folder / "images" / "b.png" and second.choices is None and second.boxes == ()
    assert third.answer == "A"


def test_ground_truth_of_an_item_is_what_the_lfpc_reward_reads(folder):
    # the manifest's rules are the reward's: an item's ground truth loads and scores without gt_error
    item = read_manifest(folder)[0]
    gt = item.ground_truth(view_width=200, view_height=150)
    assert loads(gt).boxes == item.boxes and loads(gt).view_width == 200
    response = "<think>Green.</think><answer>B</answer>"
    (score,) = compute_score_stage2([{"response": response, "response_length": 5, "ground_truth": gt}])
    assert (score["accuracy"], score["gt_error"]) == (1.0, 0.0)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ({"id": "q9", "image": "images/a.png", "question": "?"}, "manifest.jsonl:4: answer: missing"),
        ({"id": "q9", "image": "images/a.png", "question": "?", "answer": ""}, ":4: answer: must be a non-empty"),
        ({"id": "q1", "image": "images/a.png", "question": "?", "answer": "x"}, ":4: id: 'q1' repeats the id of"),
        ({"id": "q9", "image": "images/zz.png", "question": "?", "answer": "x"}, ":4: image: "),
        ({"id": "q9", "image": "images/a.png", "question": "?", "answer": "x", "boxes": [[390, 10, 410, 20]]},
         ":4: boxes: box 0 [390.0, 10.0, 410.0, 20.0] is not x1 < x2, y1 < y2 inside the 400x300 image"),
        ({"id": "q9", "image": "images/a.png", "question": "?", "answer": "x",
          "boxes": [[0, 0, 100, 80], [10, 10, 20, 20]]}, ":4: boxes: boxes are not nested"),
        ({"id": "q9", "image": "images/a.png", "question": "?", "answer": "E", "choices": CHOICES},
         ":4: answer: answer 'E' is not the letter of one of the 4 choices (A-D)"),
        ({"id": "q9", "image": "images/a.png", "question": "?", "answer": "A", "choices": ["only"]},
         ":4: choices: choices must be a list of 2 to 8"),
        ({"id": "q9", "image": "images/a.png", "question": "?", "answer": "x", "boxs": [[1, 1, 2, 2]]},
         ":4: boxs: unknown field; did you mean 'boxes'?"),
        ({"id": 9, "image": "images/a.png", "question": "?", "answer": "x"}, ":4: id: must be a non-empty string"),
        ("[1, 2]", ":4: not a JSON object"),
        ("{oops", ":4: not a JSON object: '{oops'"),
    ],
)  # fmt: skip
def test_bad_rows_are_one_line_errors_naming_line_and_field(folder, line, message):
    # the reader stops at the first problem with a message a user can act on, never a traceback
    path = folder / MANIFEST_NAME
    path.write_text(path.read_text() + (line if isinstance(line, str) else json.dumps(line)) + "\n")
    with pytest.raises(UserError) as error:
        read_manifest(path)
    assert message in str(error.value) and "\n" not in str(error.value)
    assert str(error.value).startswith(str(path))


def test_missing_image_error_names_the_resolved_path(folder):
    path = folder / MANIFEST_NAME
    path.write_text(path.read_text() + json.dumps({"id": "q9", "image": "nope.png", "question": "?", "answer": "x"}))
    with pytest.raises(UserError, match=rf"{MANIFEST_NAME}:4: image: {folder / 'nope.png'} does not exist"):
        read_manifest(path)


def test_validate_reports_every_problem_and_exits_1(folder, capsys):
    # locus-data validate detects a manifest by file type and lists every bad row, grouped by kind
    path = folder / MANIFEST_NAME
    extra = [
        {"id": "q1", "image": "images/a.png", "question": "?", "answer": "x"},
        {"id": "q8", "image": "images/missing.png", "question": "?", "answer": "x"},
        {"id": "q9", "image": "images/a.png", "question": "?", "answer": "x", "boxes": [[0, 0, 500, 10]]},
    ]
    path.write_text(path.read_text() + "".join(json.dumps(row) + "\n" for row in extra))
    assert main(["validate", str(path), "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "FAILED: 3 problems" in out
    for kind, line in (("duplicate id", 4), ("missing image", 5), ("boxes outside the image", 6)):
        assert f"  {kind}: 1" in out and f"{MANIFEST_NAME}:{line}:" in out


def test_validate_passes_a_good_manifest_and_decodes_images(folder, capsys):
    assert main(["validate", str(folder), "--quiet", "--decode", "-1"]) == 0  # the folder holding manifest.jsonl
    assert "OK: manifest.jsonl 3 rows checked (3 images fully decoded)" in capsys.readouterr().out


def test_a_truncated_image_fails_the_decode_check(folder):
    # the header reads, the pixels do not: only a full decode finds it
    data = (folder / "images" / "a.png").read_bytes()
    (folder / "images" / "a.png").write_bytes(data[: len(data) // 2])
    assert check_manifest(folder, decode=0, progress=False).ok
    report = check_manifest(folder, decode=-1, progress=False)
    assert list(report.problems) == ["image does not decode"]


def test_parquet_manifests_read_like_jsonl(folder):
    # the same rows in a Parquet file: problems name "row N" (from 0) instead of a line
    rows = [json.loads(line) for line in (folder / MANIFEST_NAME).read_text().splitlines()]
    pq.write_table(pa.Table.from_pylist(rows), folder / "m.parquet")
    assert [item.id for item in read_manifest(folder / "m.parquet")] == ["q1", "q2", "q3"]
    rows[2]["answer"] = "C"
    pq.write_table(pa.Table.from_pylist(rows), folder / "bad.parquet")
    with pytest.raises(UserError, match=r"bad.parquet:row 2: answer: answer 'C'"):
        read_manifest(folder / "bad.parquet")


def test_manifests_are_told_apart_from_cue_search_datasets(folder, tmp_path_factory):
    dataset = tmp_path_factory.mktemp("dataset")
    pq.write_table(pa.table({"problem": ["p"], "images": [["x"]], "answer": ["a"]}), dataset / "train.parquet")
    assert is_manifest(folder) and is_manifest(folder / MANIFEST_NAME)
    assert not is_manifest(dataset)
    with pytest.raises(UserError, match="is a split of a cue-search dataset; pass its folder"):
        is_manifest(dataset / "train.parquet")


def test_write_round_trips_atomically_with_relative_images(folder, tmp_path):
    items = read_manifest(folder)
    out = write_manifest(folder / "copy.jsonl", items)
    assert read_manifest(out) == items
    assert json.loads(out.read_text().splitlines()[0])["image"] == "images/a.png"  # relative: the folder can move
    assert not list(folder.glob(".*.tmp"))
    # a bad item is refused before anything is written
    bad = VqaItem("q1", items[0].image, "?", "Z", 400, 300, ("a", "b"))
    with pytest.raises(UserError, match="cannot write .*item 1: answer"):
        write_manifest(tmp_path / "never.jsonl", [bad])
    assert not (tmp_path / "never.jsonl").exists()


def test_preview_draws_a_manifest(folder, capsys):
    # locus-data preview on a manifest writes preview.png beside manifest.jsonl
    assert main(["preview", str(folder / MANIFEST_NAME), "--n", "2"]) == 0
    with Image.open(folder / "preview.png") as sheet:
        assert sheet.width > 800 and sheet.height > 300
    assert "preview.png" in capsys.readouterr().out


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "nothing.jsonl")]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0
