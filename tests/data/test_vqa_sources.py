"""`locus-data convert-vqa`: small files in each public set's published format (see locus_data/vqa_sources.py for
the sources) -> a VQA manifest that reads back, and on into an LFPC export."""

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from locus_data.cli import main
from locus_data.errors import UserError
from locus_data.lfpc_export import check_export, export_lfpc
from locus_data.vqa import read_manifest
from locus_data.vqa_sources import convert
from locus_reward.answers import is_correct


def image(path, size=(320, 240), colour=(90, 120, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


def jpeg_bytes(size=(300, 200)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 200, 40)).save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.fixture()
def pixelreasoner(tmp_path):
    """release.parquet + the unpacked images.zip folder, in TIGER-Lab/PixelReasoner-RL-Data's layout."""
    root = tmp_path / "PixelReasoner-RL-Data"
    for name in ("a", "b", "c", "d"):
        image(root / "images" / "infographics" / f"{name}.jpg")
    mcq = "What is on the sign?\nOptions:\n(A) stop\n(B) yield\n(C) exit\nAnswer with the option letter."
    rows = [
        {"qid": "q-1", "question": "How many boats are moored?", "image": ["infographics/a.jpg"],
         "answer": ["\\boxed{3}"], "is_video": False},
        {"qid": "q-2", "question": mcq, "image": ["infographics/b.jpg"], "answer": ["\\boxed{B}"], "is_video": None},
        {"qid": "q-3", "question": "What animal?", "image": ["infographics/c.jpg"],
         "answer": ["\\boxed{cat}", "\\boxed{kitten}"], "is_video": False},
        {"qid": "v-1", "question": "What happens next?", "image": ["vid/1.jpg", "vid/2.jpg"], "answer": ["\\boxed{A}"],
         "is_video": True},
        {"qid": "m-1", "question": "Compare them.", "image": ["infographics/c.jpg", "infographics/d.jpg"],
         "answer": ["\\boxed{left}"], "is_video": False},
        {"qid": "n-1", "question": "Unanswered?", "image": ["infographics/d.jpg"], "answer": None, "is_video": False},
    ]  # fmt: skip
    pq.write_table(pa.Table.from_pylist(rows), root / "release.parquet")
    return root


def test_pixelreasoner_rows_become_manifest_items(pixelreasoner, tmp_path):
    # \boxed answers unwrapped, options in the text split into choices, video and multi-image rows skipped
    report = convert("pixelreasoner", pixelreasoner / "release.parquet", tmp_path / "pr.jsonl",
                     pixelreasoner / "images", progress=False)  # fmt: skip
    assert (report.written, report.multiple_choice, report.several_answers) == (3, 1, 1)
    assert dict(report.skipped) == {"video": 1, "several images": 1, "answer is null": 1}
    boats, sign, animal = read_manifest(tmp_path / "pr.jsonl")
    assert (boats.id, boats.question, boats.answer, boats.choices) == (
        "pixelreasoner-q-1",
        "How many boats are moored?",
        "3",
        None,
    )
    assert boats.image == pixelreasoner / "images" / "infographics" / "a.jpg" and (boats.width, boats.height) == (
        320,
        240,
    )
    assert (sign.question, sign.choices, sign.answer) == ("What is on the sign?", ("stop", "yield", "exit"), "B")
    assert animal.answer == "cat" and animal.extra["all_answers"] == ["cat", "kitten"]
    assert boats.extra == {"source": "pixelreasoner", "source_id": "q-1"}


@pytest.fixture()
def cof(tmp_path):
    """The JSON list xtong-zhang/Chain-of-Focus's prepare_zoomin_data.py reads, with images under an image root."""
    root = tmp_path / "images_cropped"
    image(root / "sa_1.jpg")
    image(root / "sub" / "sa_2.png")
    rows = [
        {"question": "What is the colour of the umbrella?\n(A) red\n(B) white\n(C) black\n(D) green",
         "groundtruth": "C", "image_name": "sa_1.jpg", "data_source": "vstar_like"},
        {"question": "What is written on the shop sign?", "groundtruth": "bakery", "image_name": "sub/sa_2.png"},
    ]  # fmt: skip
    (tmp_path / "cof_rl.json").write_text(json.dumps(rows))
    return tmp_path


def test_cof_rows_become_manifest_items(cof, tmp_path):
    # options written in the question are split off; the letter answer is then scored as a choice
    report = convert("cof", cof / "cof_rl.json", tmp_path / "out", cof / "images_cropped", progress=False)
    assert report.path == tmp_path / "out" / "manifest.jsonl" and report.written == 2
    umbrella, sign = read_manifest(tmp_path / "out")
    assert (umbrella.id, umbrella.question, umbrella.answer) == (
        "cof-000000",
        "What is the colour of the umbrella?",
        "C",
    )
    assert umbrella.choices == ("red", "white", "black", "green") and umbrella.extra["data_source"] == "vstar_like"
    assert is_correct("C. black", umbrella.answer, umbrella.choices)
    assert (sign.answer, sign.choices, sign.image.name) == ("bakery", None, "sa_2.png")


@pytest.fixture()
def thinklite(tmp_path):
    """A ThinkLite-VL-hard-11k-style parquet: id, problem with an <image> marker, answer, image bytes."""
    png = io.BytesIO()
    Image.new("RGB", (64, 48), (1, 2, 3)).save(png, format="PNG")
    rows = [
        {"id": 17, "problem": "<image>What is the value of x in the figure?", "answer": "12", "image": jpeg_bytes()},
        {"id": 18, "problem": "<image>Which bar is tallest?\nA. 2019\nB. 2020", "answer": "B",
         "image": {"bytes": png.getvalue(), "path": None}},
    ]  # fmt: skip
    schema = pa.schema([("id", pa.int64()), ("problem", pa.string()), ("answer", pa.string()),
                        ("image", pa.binary())])  # fmt: skip
    first = pa.Table.from_pylist(rows[:1], schema=schema)
    struct = pa.schema([*schema][:3] + [pa.field("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())]))])
    (tmp_path / "shards").mkdir()
    pq.write_table(first, tmp_path / "shards" / "train-00000.parquet")
    pq.write_table(pa.Table.from_pylist(rows[1:], schema=struct), tmp_path / "shards" / "train-00001.parquet")
    return tmp_path, rows


def test_thinklite_images_are_written_out_unchanged_and_a_rerun_rewrites_nothing(thinklite, tmp_path):
    # embedded images become files beside the manifest, bytes as published; shards are read in order
    source, rows = thinklite
    report = convert("thinklite", source / "shards", tmp_path / "tl" / "manifest.jsonl", progress=False)
    first, second = read_manifest(tmp_path / "tl")
    assert (
        first.image == tmp_path / "tl" / "images" / "thinklite-17.jpg" and first.image.read_bytes() == rows[0]["image"]
    )
    assert (first.question, first.answer) == ("What is the value of x in the figure?", "12")
    assert second.image.suffix == ".png" and (second.choices, second.answer) == (("2019", "2020"), "B")
    assert report.multiple_choice == 1
    stamp = first.image.stat().st_mtime_ns
    with pytest.raises(UserError, match="exists; pass --overwrite"):
        convert("thinklite", source / "shards", tmp_path / "tl" / "manifest.jsonl", progress=False)
    convert("thinklite", source / "shards", tmp_path / "tl" / "manifest.jsonl", overwrite=True, progress=False)
    assert first.image.stat().st_mtime_ns == stamp


@pytest.fixture()
def visualprobe(tmp_path):
    """Mini-o3's VisualProbe train.json (docs/mini_o3_demo.md's fields) under BASE_IMAGE_DIR, images kept flat."""
    base = tmp_path / "base"
    image(base / "VisualProbe_train" / "data" / "p1.jpg", size=(1200, 900))
    image(base / "p2.jpg", size=(900, 1200))  # a download that flattened the folder: found by file name
    rows = [
        {"images": ["VisualProbe_train/data/p1.jpg"], "doc_id": 7, "problem": "<image>\nWhat colour is the kite?",
         "solution": "Red.", "data_source": "visual_probe_train"},
        {"images": ["VisualProbe_train/data/p2.jpg"], "doc_id": 8, "problem": "<image>\nHow many birds are there?",
         "solution": "four", "data_source": "visual_probe_train"},
    ]  # fmt: skip
    (base / "VisualProbe_train" / "train.json").write_text(json.dumps(rows))
    return base


def test_visualprobe_rows_become_manifest_items_and_export_for_stage_two(visualprobe, tmp_path):
    # the Stage II source: converted, then exported with the originals as views; validate passes
    source = visualprobe / "VisualProbe_train" / "train.json"
    convert("visualprobe", source, tmp_path / "vp.jsonl", visualprobe, progress=False)
    kite, birds = read_manifest(tmp_path / "vp.jsonl")
    assert (kite.id, kite.question, kite.answer) == ("visualprobe-7", "What colour is the kite?", "Red.")
    assert is_correct("red", kite.answer) and is_correct("4", birds.answer)  # the reward's rule reads them as given
    assert birds.image == visualprobe / "p2.jpg" and kite.extra["data_source"] == "visual_probe_train"
    export_lfpc(tmp_path / "vp.jsonl", tmp_path / "export", val=1, view="original", progress=False)
    assert check_export(tmp_path / "export", progress=False).ok


def test_bad_input_is_one_line_naming_the_row_and_the_fix(cof, pixelreasoner, tmp_path, capsys):
    # a missing field, a missing image, an unknown format: each one line, exit status 2
    rows = json.loads((cof / "cof_rl.json").read_text())
    del rows[1]["groundtruth"]
    (cof / "broken.json").write_text(json.dumps(rows))
    with pytest.raises(UserError, match=r"broken.json:item 1: groundtruth: missing \(cof rows have question"):
        convert("cof", cof / "broken.json", tmp_path / "x.jsonl", cof / "images_cropped", progress=False)
    with pytest.raises(UserError, match="does not exist; --images must be the folder images.zip was unpacked into"):
        convert("pixelreasoner", pixelreasoner / "release.parquet", tmp_path / "x.jsonl", pixelreasoner,
                progress=False)  # fmt: skip
    (pixelreasoner / "images" / "infographics" / "a.jpg").unlink()
    report = convert("pixelreasoner", pixelreasoner / "release.parquet", tmp_path / "x.jsonl",
                     pixelreasoner / "images", skip_bad_images=True, progress=False)  # fmt: skip
    assert report.skipped["image missing"] == 1 and report.written == 2
    args = ["convert-vqa", str(cof / "cof_rl.json"), "--format", "llava", "--out", str(tmp_path / "y.jsonl")]
    assert main(args) == 2
    assert "--format must be one of pixelreasoner, cof, thinklite, visualprobe" in capsys.readouterr().err
    assert main(["convert-vqa", str(cof / "cof_rl.json"), "--format", "cof", "--out", str(tmp_path / "y.jsonl")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--images is required for cof" in err


def test_cli_convert_limit_and_summary(cof, capsys):
    # the command prints what it wrote; --limit stops early for a quick trial
    out = cof / "one.jsonl"
    args = ["convert-vqa", str(cof / "cof_rl.json"), "--format", "cof", "--images", str(cof / "images_cropped")]
    assert main([*args, "--out", str(out), "--limit", "1", "--quiet"]) == 0
    assert "wrote 1 questions" in capsys.readouterr().out and len(read_manifest(out)) == 1


def test_sources_from_different_folders_merge_into_one_manifest_and_export(cof, thinklite, tmp_path, capsys):
    # Stage I's sources combined: relative image paths (thinklite's, beside its manifest) survive the move
    source, _ = thinklite
    convert("cof", cof / "cof_rl.json", tmp_path / "cof" / "manifest.jsonl", cof / "images_cropped", progress=False)
    convert("thinklite", source / "shards", tmp_path / "tl" / "manifest.jsonl", progress=False)
    out = tmp_path / "stage1" / "manifest.jsonl"
    args = ["merge-vqa", str(tmp_path / "cof"), str(tmp_path / "tl"), "--out", str(out)]
    assert main(args) == 0 and "wrote 4 questions from 2 manifests" in capsys.readouterr().out
    merged = read_manifest(out)
    assert [it.id for it in merged] == ["cof-000000", "cof-000001", "thinklite-17", "thinklite-18"]
    assert merged[2].image == tmp_path / "tl" / "images" / "thinklite-17.jpg"
    assert main(args) == 2 and "exists; pass --overwrite" in capsys.readouterr().err
    duplicate = ["merge-vqa", str(tmp_path / "cof"), str(tmp_path / "cof"), "--out", str(tmp_path / "d.jsonl")]
    assert main(duplicate) == 2 and "id 'cof-000000' is in both" in capsys.readouterr().err
    export_lfpc(out, tmp_path / "export", val=1, progress=False)
    assert check_export(tmp_path / "export", progress=False).ok


def test_merge_equal_draws_as_many_questions_from_each_manifest(tmp_path, capsys):
    # Table 8's 1:1 "Mix Data": the larger manifest gives a seeded draw of the smaller's size, in its own order; the
    # same seed gives the same draw, another seed (here) another one
    from locus_data.synth_vqa import synth_vqa

    big = synth_vqa(tmp_path / "big", 6, seed=0, progress=False)
    small = tmp_path / "small.jsonl"
    rows = [json.loads(line) for line in big.read_text().splitlines()[:2]]
    for row in rows:
        row["id"], row["image"] = row["id"] + "_boxed", str(big.parent / row["image"])
    small.write_text("".join(json.dumps(row) + "\n" for row in rows))

    def draw(seed: int, name: str) -> list[str]:
        out = tmp_path / f"{name}.jsonl"
        assert main(["merge-vqa", str(big), str(small), "--out", str(out), "--equal", "--seed", str(seed)]) == 0
        return [item.id for item in read_manifest(out)]

    first = draw(0, "a")
    assert "wrote 4 questions from 2 manifests" in capsys.readouterr().out
    assert first[2:] == ["synthvqa_00000_boxed", "synthvqa_00001_boxed"] and len(set(first[:2])) == 2
    assert first[:2] == sorted(first[:2]) and all(not i.endswith("_boxed") for i in first[:2])
    assert draw(0, "b") == first
    assert {tuple(draw(seed, f"s{seed}")[:2]) for seed in range(1, 6)} != {tuple(first[:2])}
