"""`locus-data export-lfpc`: a VQA manifest -> EasyR1 rows (one view struct with the original's path), the split,
the atomic write, `validate` and `preview` on an export, and the view_image checks of the manifest reader."""

import json
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from locus_data import lfpc_schema as ls
from locus_data.cli import main
from locus_data.config import SPLITS
from locus_data.errors import UserError
from locus_data.lfpc_export import check_export, export_lfpc, is_export, split_by_image
from locus_data.vqa import MANIFEST_NAME, read_manifest, write_manifest
from locus_reward.answers import MCQ_INSTRUCTION, SHORT_ANSWER_INSTRUCTION
from locus_reward.lfpc_ground_truth import loads

from .conftest import rows


W, H = 600, 400
CHOICES = ["red", "green", "blue"]


def write_lines(path, lines) -> None:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


@pytest.fixture()
def folder(tmp_path):
    """Six 600x400 originals; q0-q2 have a 1/3-size view_image (q2 two questions on one image: q2a, q2b)."""
    (tmp_path / "images").mkdir()
    (tmp_path / "views").mkdir()
    lines = []
    for k in range(6):
        image = Image.new("RGB", (W, H), (40 * k, 90, 200 - 30 * k))
        image.save(tmp_path / "images" / f"i{k}.png")
        ids = ["q2a", "q2b"] if k == 2 else [f"q{k}"]
        for key in ids:
            line = {"id": key, "image": f"images/i{k}.png", "question": f"What colour is card {key}?"}
            if k % 2 == 0:
                line |= {"choices": CHOICES, "answer": "B", "boxes": [[100, 100, 120, 110], [80, 90, 200, 150]]}
            else:
                line["answer"] = "a cup"
            if k < 3:
                image.resize((W // 3, H // 3)).save(tmp_path / "views" / f"i{k}.png")
                line |= {"view_image": f"views/i{k}.png", "selection": {"scale": 1 / 3, "answers": ["B", "A"]}}
            lines.append(line)
    write_lines(tmp_path / MANIFEST_NAME, lines)
    return tmp_path


def exported(out) -> dict[str, dict]:
    """``{id: row}`` over both splits of an export."""
    return {row[ls.ID]: row for split in SPLITS for row in rows(out / f"{split}.parquet")}


def test_rows_carry_the_view_bytes_the_original_path_and_the_ground_truth_in_the_view_frame(folder, tmp_path):
    # the contract with MultiTurnRollout: bytes = what the model sees, path = where crops are cut from
    out = tmp_path / "export"
    info = export_lfpc(folder, out, val=1, progress=False)
    table = exported(out)
    assert set(table) == {"q0", "q1", "q2a", "q2b", "q3", "q4", "q5"}
    assert info["rows"] == {"train": 7 - info["rows"]["val"], "val": info["rows"]["val"]}
    for item in read_manifest(folder):
        row = table[item.id]
        (entry,) = row[ls.IMAGES]
        view_file = item.view_image or item.image
        assert entry["bytes"] == view_file.read_bytes()  # stored unchanged, never re-encoded
        assert entry["path"] == str(item.image.resolve())
        gt = loads(row[ls.ANSWER])
        assert (gt.width, gt.height) == (W, H) and gt.boxes == item.boxes  # boxes stay in original pixels
        assert (
            (gt.view_width, gt.view_height) == Image.open(view_file).size == (row[ls.VIEW_WIDTH], row[ls.VIEW_HEIGHT])
        )
        assert row[ls.VIEW] == ("selected" if item.view_image else "original")
        assert row[ls.NUM_BOXES] == len(item.boxes) and row[ls.VIEW_SCALE] == pytest.approx(gt.view_width / W)
        assert (
            json.loads(row[ls.SELECTION]) == item.extra["selection"] if item.view_image else row[ls.SELECTION] is None
        )
        assert row[ls.PROBLEM].count("<image>") == 1 and row[ls.PROBLEM].startswith("<image>What colour is card")
    assert table["q0"][ls.PROBLEM].endswith(f"A. red\nB. green\nC. blue\n{MCQ_INSTRUCTION}")
    assert table["q1"][ls.PROBLEM].endswith(f"q1?\n{SHORT_ANSWER_INSTRUCTION}")
    assert json.loads((out / "export.json").read_text())["selected_views"] == info["selected_views"]
    assert sum(info["selected_views"].values()) == 4


def test_view_original_ignores_view_image_for_stage_two(folder, tmp_path):
    # Stage II's setting: the model sees each original even where selection added a view
    export_lfpc(folder, tmp_path / "export", view="original", progress=False)
    for item in read_manifest(folder):
        row = exported(tmp_path / "export")[item.id]
        assert row[ls.IMAGES][0]["bytes"] == item.image.read_bytes() and row[ls.VIEW] == "original"
        assert (loads(row[ls.ANSWER]).view_width, row[ls.VIEW_SCALE]) == (W, 1.0)


def test_hugging_face_datasets_hands_easyr1_the_struct_with_the_path(folder, tmp_path):
    # EasyR1's RLHFDataset loads parquet with `datasets`: an Image feature would decode the view and drop the path
    import datasets

    export_lfpc(folder, tmp_path / "export", val=1, progress=False)
    loaded = datasets.load_dataset("parquet", data_files=str(tmp_path / "export" / "train.parquet"), split="train")
    entry = loaded[0][ls.IMAGES][0]
    assert isinstance(entry, dict) and entry["path"].endswith(".png") and entry["bytes"][:4] == b"\x89PNG"


def test_split_is_deterministic_whole_images_and_seeded(folder):
    # reruns give the same split; all questions about one image stay on one side; the seed changes the draw
    items = read_manifest(folder)
    draws = {seed: split_by_image(items, 2, seed) for seed in range(6)}
    for train, val in draws.values():
        assert len(val) >= 2 and len(train) + len(val) == len(items)
        assert not {it.image for it in train} & {it.image for it in val}
        assert [it.id for it in train] == [it.id for it in items if it in train]  # manifest order kept
    assert draws[0] == split_by_image(items, 2, 0)
    assert len({tuple(it.id for it in val) for _, val in draws.values()}) > 1
    # the draw depends on the manifest's contents, not its row order
    shuffled = split_by_image(list(reversed(items)), 2, 0)
    assert {it.id for it in shuffled[1]} == {it.id for it in draws[0][1]}
    with pytest.raises(UserError, match="leaves no training question"):
        split_by_image(items, 7, 0)


def test_val_manifest_must_share_no_image_or_id(folder, tmp_path):
    # a validation question about a training image measures memory; a shared id breaks id-keyed outputs
    lines = [json.loads(line) for line in (folder / MANIFEST_NAME).read_text().splitlines()]
    write_lines(folder / "train.jsonl", lines[:4])
    write_lines(folder / "val.jsonl", lines[4:])
    info = export_lfpc(folder / "train.jsonl", tmp_path / "ok", val_manifest=folder / "val.jsonl", progress=False)
    assert info["rows"] == {"train": 4, "val": 3}
    write_lines(folder / "shared.jsonl", [lines[0] | {"id": "other"}])
    with pytest.raises(UserError, match="share 1 images"):
        export_lfpc(folder / "train.jsonl", tmp_path / "bad", val_manifest=folder / "shared.jsonl", progress=False)
    write_lines(folder / "same_id.jsonl", [lines[5] | {"id": "q0"}])
    with pytest.raises(UserError, match="share 1 ids"):
        export_lfpc(folder / "train.jsonl", tmp_path / "bad", val_manifest=folder / "same_id.jsonl", progress=False)


def test_an_existing_export_is_kept_unless_overwrite_and_a_failed_export_leaves_it_whole(folder, tmp_path):
    # nothing lost: a rerun refuses, and an export that fails half-way leaves the previous files and no temporaries
    out = tmp_path / "export"
    export_lfpc(folder, out, val=1, progress=False)
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    with pytest.raises(UserError, match="already holds an export; pass --overwrite"):
        export_lfpc(folder, out, val=1, progress=False)
    lines = [json.loads(line) for line in (folder / MANIFEST_NAME).read_text().splitlines()]
    lines[-1]["question"] = "Is <image> here?"  # refused when its row is built, after earlier rows were written
    write_lines(folder / "bad.jsonl", lines)
    with pytest.raises(UserError, match="q5: the question holds an <image> marker"):
        export_lfpc(folder / "bad.jsonl", out, val=1, overwrite=True, progress=False)
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before
    export_lfpc(folder, out, val=2, overwrite=True, progress=False)
    assert json.loads((out / "export.json").read_text())["val_requested"] == 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"view_image": "views/big.png"}, "view_image: a view image larger than the original: 700x400 > 600x400"),
        ({"view_image": "views/square.png"}, "view_image: view image 200x200 is not the 600x400 original resized"),
        ({"view_image": "views/none.png"}, "view_image: .*none.png does not exist"),
        ({"view_image": ""}, "view_image: must be a non-empty path string"),
    ],
)
def test_a_bad_view_image_is_a_one_line_error_naming_line_and_field(folder, change, message, capsys):
    # the reader refuses a view that cannot be the original resized, before anything trains on it
    Image.new("RGB", (700, 400)).save(folder / "views" / "big.png")
    Image.new("RGB", (200, 200)).save(folder / "views" / "square.png")
    lines = [json.loads(line) for line in (folder / MANIFEST_NAME).read_text().splitlines()]
    lines[3] |= change
    write_lines(folder / "bad.jsonl", lines)
    with pytest.raises(UserError, match=rf"bad.jsonl:4: {message}"):
        read_manifest(folder / "bad.jsonl")
    assert main(["export-lfpc", str(folder / "bad.jsonl"), "--out", str(folder / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.jsonl:4: view_image" in err
    assert main(["validate", str(folder / "bad.jsonl"), "--quiet"]) == 1


def test_view_image_round_trips_relative_through_write_manifest(folder):
    # resolution selection writes manifests with write_manifest: the view stays relative to the manifest's folder
    items = read_manifest(folder)
    write_manifest(folder / "copy.jsonl", items)
    first = json.loads((folder / "copy.jsonl").read_text().splitlines()[0])
    assert first["view_image"] == "views/i0.png"
    again = read_manifest(folder / "copy.jsonl")
    assert (again[0].view_image, again[0].view_width, again[0].view_height) == (folder / "views" / "i0.png", 200, 133)
    assert (again[4].view_image, again[4].view_width) == (None, None)


def test_validate_accepts_an_export_and_reports_each_broken_row(folder, tmp_path, capsys):
    # `locus-data validate DIR` understands an export: every problem a training run would hit, by kind
    out = tmp_path / "export"
    export_lfpc(folder, out, val=1, progress=False)
    assert is_export(out) and not is_export(folder)
    assert main(["validate", str(out), "--quiet", "--decode", "-1"]) == 0
    assert "OK: train" in capsys.readouterr().out
    table = pq.read_table(out / "train.parquet")
    broken = table.to_pylist()
    big = tmp_path / "big.png"
    Image.new("RGB", (W, H)).resize((W + 10, H)).save(big)
    broken[0][ls.IMAGES] = [{"bytes": None, "path": broken[0][ls.IMAGES][0]["path"]}]
    broken[1][ls.IMAGES] = [{"bytes": broken[1][ls.IMAGES][0]["bytes"], "path": "images/i0.png"}]
    broken[2][ls.IMAGES] = [{"bytes": broken[2][ls.IMAGES][0]["bytes"], "path": str(tmp_path / "gone.png")}]
    broken[3][ls.ANSWER] = "{not json"
    broken[4][ls.IMAGES] = [{"bytes": big.read_bytes(), "path": broken[4][ls.IMAGES][0]["path"]}]
    broken[5][ls.PROBLEM] = "<image><image>two"
    pq.write_table(pa.Table.from_pylist(broken, schema=ls.SCHEMA), out / "train.parquet")
    report = check_export(out, progress=False)
    kinds = set(report.problems)
    assert kinds >= {
        "view image cannot be opened",
        "view struct path must be the original's absolute path",
        "original image missing or unreadable",
        "answer does not parse",
        "view image larger than the original",
        "problem must hold exactly one <image> marker",
    }
    assert main(["validate", str(out), "--quiet"]) == 1


def test_validate_catches_a_view_size_that_disagrees_with_the_ground_truth(folder, tmp_path):
    # the reward maps the model's boxes from the GT's view size: it must be the stored view's
    out = tmp_path / "export"
    export_lfpc(folder, out, val=1, progress=False)
    table = pq.read_table(out / "train.parquet").to_pylist()
    first = next(row for row in table if row[ls.VIEW] == "selected")
    gt = json.loads(first[ls.ANSWER])
    first[ls.ANSWER] = json.dumps(gt | {"view_width": W, "view_height": H})
    pq.write_table(pa.Table.from_pylist(table, schema=ls.SCHEMA), out / "train.parquet")
    report = check_export(out, progress=False)
    assert list(report.problems) == ["answer view_width/view_height differ from the stored view"]


def test_cli_export_then_preview_and_stats_refusal(folder, tmp_path):
    # the commands a user runs, as subprocesses: summary line, the no-selection note, preview PNG, stats refused
    out = tmp_path / "export"
    run = lambda *args: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "locus_data.cli", *args], capture_output=True, text=True, check=False
    )
    done = run("export-lfpc", str(folder), "--out", str(out), "--val", "2", "--quiet")
    assert done.returncode == 0 and "4 show a selected view, 3 the original" in done.stdout, done.stderr
    assert done.stderr == ""
    original = run("export-lfpc", str(folder), "--out", str(tmp_path / "o"), "--view", "original", "--quiet")
    assert original.returncode == 0 and "0 show a selected view" in original.stdout and original.stderr == ""
    lines = [json.loads(line) for line in (folder / MANIFEST_NAME).read_text().splitlines()]
    write_lines(folder / "unselected.jsonl", [{k: v for k, v in line.items() if k != "view_image"} for line in lines])
    plain = run("export-lfpc", str(folder / "unselected.jsonl"), "--out", str(tmp_path / "plain"), "--quiet")
    assert plain.returncode == 0 and "note: no row has a view_image" in plain.stderr  # Stage I without selection
    preview = run("preview", str(out), "--n", "3")
    assert preview.returncode == 0 and Image.open(out / "preview.png").width > 0
    stats = run("stats", str(out))
    assert stats.returncode == 2 and stats.stderr.count("\n") == 1 and "LFPC export" in stats.stderr
    bad = run("export-lfpc", str(folder), "--out", str(tmp_path / "x"), "--val", "0")
    assert bad.returncode == 2 and "--val must be >= 1" in bad.stderr


def test_a_manifest_written_elsewhere_keeps_its_view_images(folder, tmp_path):
    # write_manifest to another folder (resolution selection's output, merge-vqa) rewrites view paths too
    write_manifest(tmp_path / "elsewhere" / "manifest.jsonl", read_manifest(folder))
    moved = read_manifest(tmp_path / "elsewhere")
    assert moved[0].view_image == folder / "views" / "i0.png" and moved[0].image == folder / "images" / "i0.png"
