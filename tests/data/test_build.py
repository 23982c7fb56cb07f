"""The output contract of ``locus-data build``, checked on real files: synthetic JPEGs, pycocotools reading the JSON,
parquet read back with pyarrow and with datasets.load_dataset."""

import json
from io import BytesIO
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from locus_data.cli import main
from locus_data.crops import cue_problem, render_cue
from locus_data.errors import UserError
from locus_data.problems import CUE_SEARCH_PROBLEM
from locus_data.validate import validate
from locus_reward.ground_truth import loads

from .conftest import REFERENCE_OVERRIDES, cue_error, rows, run_build


def _source(coco: Path, row: dict) -> Image.Image:
    return Image.open(coco / "train2014" / row["source_file"]).convert("RGB")


def test_output_files_are_written(reference):
    for name in ("train.parquet", "val.parquet", "stats.json", "stats.md", "config.yaml"):
        assert (reference / name).is_file(), name
    assert not (reference / ".build").exists()


def test_split_sizes_and_bin_counts_are_exact(reference):
    for split, n in (("train", 200), ("val", 40)):
        table = rows(reference / f"{split}.parquet")
        assert len(table) == n
        bins = [r["size_bin"] for r in table]
        assert bins.count("tiny") == round(0.7 * n) and bins.count("small") == n - round(0.7 * n)
        assert {r["split"] for r in table} == {split}


def test_val_images_are_disjoint_from_train(reference):
    train = {r["image_id"] for r in rows(reference / "train.parquet")}
    val = {r["image_id"] for r in rows(reference / "val.parquet")}
    assert train and val and not train & val


def test_problem_images_answer_follow_the_easyr1_contract(reference):
    for row in rows(reference / "train.parquet"):
        assert row["problem"] == CUE_SEARCH_PROBLEM and row["problem"].count("<image>") == 2
        assert len(row["images"]) == 2 and all(set(im) == {"bytes", "path"} and im["bytes"] for im in row["images"])
        gt = loads(row["answer"])
        full = Image.open(BytesIO(row["images"][0]["bytes"]))
        assert full.size == (gt.width, gt.height) == (row["source_width"], row["source_height"])
        assert json.loads(row["answer"]).keys() == {"box", "width", "height"}


def test_answer_is_the_crop_window_and_the_cue_is_cut_from_it(coco, reference):
    """Alignment: re-cutting the source at the answer box reproduces the stored (JPEG) cue up to coding noise,
    far closer than a cut 3 px off would."""
    ratios = []
    for row in rows(reference / "train.parquet") + rows(reference / "val.parquet"):
        gt = loads(row["answer"])
        assert list(gt.box) == row["crop_box"]
        x1, y1, x2, y2 = row["obj_box"]
        bx1, by1, bx2, by2 = gt.box
        assert bx1 <= x1 and by1 <= y1 and bx2 >= x2 and by2 >= y2  # the window contains the object
        cue = Image.open(BytesIO(row["images"][1]["bytes"]))
        assert cue.size == (row["cue_width"], row["cue_height"]) and cue.format == "JPEG"
        error, shifted_error = cue_error(cue, _source(coco, row), tuple(int(v) for v in gt.box), row["cue_scale"])
        assert error < 4.0, row["image_id"]
        ratios.append(shifted_error / max(error, 1e-9))
    assert float(np.median(ratios)) > 3


def test_png_cues_are_exact_re_cuts_of_the_source(coco, tmp_path):
    run_build(coco, tmp_path / "png", ["num_train=60", "num_val=10", "cue_format=png"])
    for row in rows(tmp_path / "png" / "train.parquet"):
        cue = Image.open(BytesIO(row["images"][1]["bytes"]))
        expected = render_cue(_source(coco, row), tuple(int(v) for v in row["crop_box"]), row["cue_scale"], 32)
        assert cue.format == "PNG" and np.array_equal(np.asarray(cue.convert("RGB")), np.asarray(expected))


def test_tiny_cues_are_padded_at_most_10_percent_and_rescaled_within_range(reference):
    table = rows(reference / "train.parquet")
    for row in table:
        x1, y1, x2, y2 = row["obj_box"]
        cx1, cy1, cx2, cy2 = row["crop_box"]
        w, h = x2 - x1, y2 - y1
        if row["size_bin"] == "tiny":
            assert 0.8 <= row["cue_scale"] <= 2.0
            # outward rounding to whole pixels adds at most 1 px per side
            assert x1 - cx1 <= 0.1 * w + 1 and cx2 - x2 <= 0.1 * w + 1
            assert y1 - cy1 <= 0.1 * h + 1 and cy2 - y2 <= 0.1 * h + 1
        else:
            assert row["cue_scale"] == 1.0
            assert [cx1, cy1, cx2, cy2] == [float(int(x1)), float(int(y1)), float(-(-x2 // 1)), float(-(-y2 // 1))]
    scales = [r["cue_scale"] for r in table if r["size_bin"] == "tiny"]
    assert min(scales) < 1.0 < max(scales)  # the draw really spans the range


def test_every_cue_is_safe_for_both_qwen_processors_and_upsampling_is_recorded(reference):
    table = rows(reference / "train.parquet")
    for row in table:
        assert cue_problem(row["cue_width"], row["cue_height"], 200.0, 32) is None
        crop_w = row["crop_box"][2] - row["crop_box"][0]
        crop_h = row["crop_box"][3] - row["crop_box"][1]
        drawn_short = min(round(crop_w * row["cue_scale"]), round(crop_h * row["cue_scale"]))
        assert row["cue_upsampled"] == (drawn_short < 32)
    assert any(r["cue_upsampled"] for r in table)


def test_rgb_sources_are_stored_byte_for_byte_and_grayscale_ones_re_encoded_as_rgb(coco, reference):
    table = rows(reference / "train.parquet")
    for row in table:
        source = (coco / "train2014" / row["source_file"]).read_bytes()
        full = row["images"][0]["bytes"]
        if row["full_reencoded"] is None:
            assert full == source
        else:
            assert row["full_reencoded"] == "non_rgb:L"
            assert Image.open(BytesIO(full)).mode == "RGB"
    assert {r["full_reencoded"] for r in table} == {None, "non_rgb:L"}


def test_metadata_columns_are_present(reference):
    table = pq.read_table(reference / "train.parquet")
    for column in ("image_id", "ann_id", "size_bin", "cue_source", "area_ratio", "category_id", "obj_box"):
        assert column in table.column_names
    assert set(table.column("cue_source").to_pylist()) == {"object"}


def test_loads_with_datasets_load_dataset(reference):
    datasets = pytest.importorskip("datasets")
    ds = datasets.load_dataset(
        "parquet", data_files={"train": str(reference / "train.parquet"), "val": str(reference / "val.parquet")}
    )
    assert ds["train"].num_rows == 200 and ds["val"].num_rows == 40
    example = ds["train"][0]
    assert example["images"][0]["bytes"][:2] == b"\xff\xd8"  # a JPEG, as EasyR1's process_image opens it


def test_stats_count_bins_and_skips(reference):
    stats = json.loads((reference / "stats.json").read_text())
    assert stats["splits"]["train"]["bins"]["tiny"]["count"] == 140
    assert stats["splits"]["val"]["bins"]["small"]["share"] == pytest.approx(0.3)
    assert stats["build"]["skipped_annotations"]["below_min_size"] > 0
    assert stats["config"]["num_train"] == 200
    assert "| train | 200 |" in (reference / "stats.md").read_text()


def test_validate_accepts_a_fresh_build(reference):
    report = validate(reference, decode=-1, progress=False)
    assert report.ok, report.summary()


def test_same_rows_whatever_the_worker_count(coco, reference, tmp_path):
    run_build(coco, tmp_path / "w2", REFERENCE_OVERRIDES, workers=2)
    for split in ("train.parquet", "val.parquet"):
        assert pq.read_table(tmp_path / "w2" / split).equals(pq.read_table(reference / split))
        assert (tmp_path / "w2" / split).read_bytes() == (reference / split).read_bytes()


def test_another_seed_gives_another_dataset(coco, reference, tmp_path):
    run_build(coco, tmp_path / "s4", ["num_train=200", "num_val=40", "seed=4"])
    assert rows(tmp_path / "s4" / "val.parquet") != rows(reference / "val.parquet")


def test_a_shortfall_fails_before_decoding_with_a_clear_message(coco, tmp_path):
    with pytest.raises(UserError, match=r"cannot fill the requested mix: tiny .* needed"):
        run_build(coco, tmp_path / "short", ["num_train=5000", "num_val=40"])
    assert not (tmp_path / "short").exists()


def test_a_shortfall_can_be_allowed_explicitly(coco, tmp_path):
    stats = run_build(coco, tmp_path / "short", ["num_train=5000", "num_val=40", "allow_shortfall=true"])
    assert stats["build"]["shortfall"] and stats["splits"]["val"]["rows"] == 40


def test_refuses_to_overwrite_a_finished_build(coco, reference):
    with pytest.raises(UserError, match="already holds a build"):
        run_build(coco, reference, REFERENCE_OVERRIDES)


def test_any_coco_format_set_works_with_annotations_and_images(coco, tmp_path):
    """An LVIS-style file (no iscrowd, images named by coco_url) in another place, given explicitly."""
    data = json.loads((coco / "annotations" / "instances_train2014.json").read_text())
    for img in data["images"]:
        img["coco_url"] = "http://images.example.org/train2017/" + img.pop("file_name")
    for ann in data["annotations"]:
        ann.pop("iscrowd")
    lvis = tmp_path / "lvis_v1_train.json"
    lvis.write_text(json.dumps(data))
    args = ["build", "--annotations", str(lvis), "--images", str(coco / "train2014"), "--out", str(tmp_path / "o")]
    assert main([*args, "--workers", "0", "--quiet", "num_train=40", "num_val=10"]) == 0
    table = rows(tmp_path / "o" / "train.parquet")
    assert len(table) == 40 and all(r["source_file"].startswith("COCO_train2014_") for r in table)
