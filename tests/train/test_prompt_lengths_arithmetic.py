"""Prompt lengths by arithmetic agree with the processor on every row of real builds, for both backbones."""

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from locus_agent.processor import load_processor
from locus_baselines.annotations import Annotation
from locus_baselines.export_text_cue import main as export_text_cue
from locus_data.build import Sources, build
from locus_data.config import load_config
from locus_data.errors import UserError
from locus_data.problems import CUE_SEARCH_PROBLEM
from locus_data.rows import example_key
from locus_data.synth import synth
from locus_reward.frames import BACKBONES, EASYR1_MAX_PIXELS, EASYR1_MIN_PIXELS
from locus_train.prompt_lengths import ImageGeometry, main, measure_file
from locus_train.recipe import DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS

from .conftest import REPO_ROOT, write_tiny_dataset


DATA_CONFIGS = REPO_ROOT / "config" / "data"
FORMAT_PROMPT = "{{ content | trim }} Think first, then answer in <answer></answer>."
# (data.min_pixels, data.max_pixels, processor limits): EasyR1's defaults with the tiny checkpoint's own small
# processor cap (EasyR1 upsamples every image, then smart_resize shrinks it), and the recipes' limits with the
# released checkpoints' processor limits (the processor cap never binds; sizes vary row by row)
SETTINGS = {
    "easyr1_defaults": (EASYR1_MIN_PIXELS, EASYR1_MAX_PIXELS, None),
    "recipe_released": (DEFAULT_MIN_PIXELS, DEFAULT_MAX_PIXELS, "released"),
}


@pytest.fixture(scope="module")
def builds(tmp_path_factory) -> dict[str, Path]:
    """A cue-search build, an info-gap build and a text-cue export of the first, on a synthetic COCO set."""
    root = tmp_path_factory.mktemp("arith")
    synth(root / "coco", 24, seed=1, progress=False)
    sources = Sources.from_args(str(root / "coco"), None, None)
    out = {}
    for name, config, extra in (
        ("cue_search", "locus_default.yaml", []),
        ("info_gap", "info_gap.yaml", ["full_max_pixels=40000"]),
    ):
        cfg = load_config(DATA_CONFIGS / config, ["num_train=30", "num_val=8", "seed=2", *extra])
        build(cfg, sources, root / name, workers=0, progress=False)
        out[name] = root / name
    # referring expressions of different lengths, so text-cue rows have many distinct problem texts
    lines = []
    for split in ("train", "val"):
        table = pq.read_table(out["cue_search"] / f"{split}.parquet", columns=["answer", "image_id"])
        for i, (answer, image_id) in enumerate(zip(table["answer"].to_pylist(), table["image_id"].to_pylist())):
            key = example_key(split, i, answer, image_id)
            lines.append(Annotation(key, "refexp", "ok", "the red mug" + " on the left" * (i % 5), None, 1, "t"))
    annotations = root / "refexp.jsonl"
    annotations.write_text("".join(line.to_line() for line in lines), encoding="utf-8")
    args = ["--data", str(out["cue_search"]), "--annotations", str(annotations), "--out", str(root / "text_cue")]
    assert export_text_cue(args) == 0
    out["text_cue"] = root / "text_cue"
    return out


def processor_for(kind: str, checkpoint: Path, limits: str | None):
    if limits is None:
        return load_processor(checkpoint)
    backbone = BACKBONES[kind]
    return load_processor(
        checkpoint, min_pixels=backbone.processor_min_pixels, max_pixels=backbone.processor_max_pixels
    )


@pytest.mark.parametrize("setting", sorted(SETTINGS))
@pytest.mark.parametrize("dataset", ["cue_search", "info_gap", "text_cue"])
def test_arithmetic_equals_the_processor_on_every_row(builds, tiny_checkpoint, dataset, setting):
    # the whole point of the arithmetic: not one row may differ from what EasyR1's processor counts
    kind, checkpoint = tiny_checkpoint
    min_pixels, max_pixels, limits = SETTINGS[setting]
    processor = processor_for(kind, checkpoint, limits)
    for split in ("train", "val"):
        path = builds[dataset] / f"{split}.parquet"
        fast = measure_file(path, processor, FORMAT_PROMPT, min_pixels, max_pixels, progress=False)
        exact = measure_file(path, processor, FORMAT_PROMPT, min_pixels, max_pixels, progress=False, exact=True)
        assert len(fast) == pq.ParquetFile(path).metadata.num_rows > 0
        assert fast == exact, [(i, a, b) for i, (a, b) in enumerate(zip(fast, exact)) if a != b][:5]
    if dataset == "text_cue":  # the export really varies the text, so the per-text tokenization is exercised
        assert len(set(pq.read_table(path, columns=["problem"])["problem"].to_pylist())) > 1


def test_image_geometry_is_read_from_the_processor(tiny_checkpoint):
    # patch 14 (Qwen2.5-VL) or 16 (Qwen3-VL) and the pixel limits come from the checkpoint, not from assumptions
    kind, checkpoint = tiny_checkpoint
    config = json.loads((checkpoint / "preprocessor_config.json").read_text())
    geometry = ImageGeometry.of(load_processor(checkpoint))
    assert (geometry.patch_size, geometry.merge_size) == (config["patch_size"], config["merge_size"])
    assert geometry.patch_size * geometry.merge_size == BACKBONES[kind].factor
    assert (geometry.min_pixels, geometry.max_pixels) == (config["min_pixels"], config["max_pixels"])


def test_sizes_come_from_image_headers_without_metadata_columns(tiny_checkpoint, tmp_path):
    # a dataset with only EasyR1's three columns (no cue_width/cue_height): sizes are read from the image headers
    _, checkpoint = tiny_checkpoint
    processor = load_processor(checkpoint)
    dataset = write_tiny_dataset(tmp_path / "data", CUE_SEARCH_PROBLEM, [(500, 375), (37, 91)], rows=2)
    path = dataset / "train.parquet"
    fast = measure_file(path, processor, FORMAT_PROMPT, 1024, 409600, progress=False)
    assert fast == measure_file(path, processor, FORMAT_PROMPT, 1024, 409600, progress=False, exact=True)


def test_marker_and_image_counts_must_match(tiny_qwen2_5_vl, tmp_path):
    # two <image> markers but one image: EasyR1's processor would raise mid-run; the count says which row
    dataset = write_tiny_dataset(tmp_path / "data", CUE_SEARCH_PROBLEM, [(64, 64)], rows=1)
    with pytest.raises(UserError, match="row 0: the prompt has 2 image placeholder"):
        measure_file(dataset / "train.parquet", load_processor(tiny_qwen2_5_vl), None, 1024, 409600, progress=False)


def test_a_bad_answer_cell_is_named_by_row(builds, tiny_qwen2_5_vl, tmp_path):
    # a width that is not an integer cannot give a size: the error says which row, not an Arrow traceback
    table = pq.read_table(builds["cue_search"] / "val.parquet")
    answers = table["answer"].to_pylist()
    answers[3] = answers[3].replace('"width": ', '"width": 1.5 + ')
    broken = tmp_path / "val.parquet"
    pq.write_table(table.set_column(table.schema.get_field_index("answer"), "answer", [answers]), broken)
    with pytest.raises(UserError, match="row 3: ground truth is not a JSON"):
        measure_file(broken, load_processor(tiny_qwen2_5_vl), None, 1024, 409600, progress=False)


def test_cli_names_a_missing_model_in_one_line(tiny_dataset, capsys):
    # a typo'd path used to reach the hub client and end in HFValidationError; a hub id not cached offline too
    for model, expected in (("/nonexistent/ckpt", "is not a directory"), ("org/not-cached", "not in the Hugging")):
        assert main([str(tiny_dataset), "--model", model, "--max-prompt-length", "4096", "--quiet"]) == 2
        err = capsys.readouterr().err
        assert expected in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
