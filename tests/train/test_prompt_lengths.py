"""Offline prompt-length measurement: EasyR1's count, the report, and filtered copies without overlong rows."""

import argparse
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from locus_data.problems import CUE_SEARCH_PROBLEM
from locus_train.images import process_image
from locus_train.prompt_lengths import add_arguments, run
from locus_train.prompt_report import summarize
from locus_train.recipe import read_recipe

from .conftest import REPO_ROOT, write_tiny_dataset


def args_for(dataset, model, tmp_path, **overrides) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    fmt = tmp_path / "fmt.jinja"
    fmt.write_text("{{ content | trim }} Answer in <answer></answer>.")
    argv = [str(dataset), "--model", str(model), "--format-prompt", str(fmt), "--min-pixels", "1024"]
    argv += ["--max-pixels", "409600", "--max-prompt-length", str(overrides.pop("budget", 4096)), "--quiet"]
    for key, value in overrides.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    return parser.parse_args(argv)


def test_process_image_matches_easyr1_resize():
    # EasyR1 upsamples below min_pixels and downsamples above max_pixels, truncating with int()
    from .conftest import jpeg

    assert process_image({"bytes": jpeg((500, 375), "red")}, 262144, 4194304).size == (591, 443)
    assert process_image({"bytes": jpeg((40, 32), "red")}, 1024, 409600).size == (40, 32)
    assert process_image({"bytes": jpeg((1280, 960), "red")}, 1024, 409600).size == (739, 554)


def test_path_only_image_struct_is_rejected_like_easyr1():
    # EasyR1's process_image reads image["bytes"]; a struct with only a path would crash the run
    with pytest.raises(ValueError, match="has no bytes"):
        process_image({"bytes": None, "path": "a.jpg"}, 1024, 409600)


def test_report_records_distribution_and_settings(tiny_checkpoint, tmp_path):
    _, model = tiny_checkpoint
    dataset = write_tiny_dataset(tmp_path / "data", CUE_SEARCH_PROBLEM, [(640, 480), (40, 32)], rows=3)
    assert run(args_for(dataset, model, tmp_path)) == 0
    report = json.loads((dataset / "prompt_lengths.json").read_text())
    assert report["min_pixels"] == 1024 and report["max_prompt_length"] == 4096
    assert report["processor_class"].startswith(("Qwen2_5_VLProcessor", "Qwen3VLProcessor"))
    for split in ("train", "val"):
        summary = report["splits"][split]
        assert summary["rows"] == 3 and summary["overlong"] == 0 and summary["min"] == summary["max"] > 0


def test_overlong_rows_fail_or_are_dropped(tiny_qwen2_5_vl, tmp_path):
    # two row shapes: a short prompt (small images) and a long one (large images); the budget sits between them
    small = write_tiny_dataset(tmp_path / "small", CUE_SEARCH_PROBLEM, [(64, 64), (32, 32)], rows=1)
    large = write_tiny_dataset(tmp_path / "large", CUE_SEARCH_PROBLEM, [(448, 448), (448, 448)], rows=1)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for split in ("train", "val"):
        tables = [pq.read_table(folder / f"{split}.parquet") for folder in (small, large)]
        pq.write_table(pa.concat_tables(tables), mixed / f"{split}.parquet")
    run(args_for(mixed, tiny_qwen2_5_vl, tmp_path, report=tmp_path / "probe.json"))
    lengths = json.loads((tmp_path / "probe.json").read_text())["splits"]["train"]
    budget = (lengths["min"] + lengths["max"]) // 2

    # left in place, an overlong row would be right-truncated by EasyR1 and crash the run: exit 1
    assert run(args_for(mixed, tiny_qwen2_5_vl, tmp_path, budget=budget)) == 1
    # with --write-filtered the copies drop it, keep the columns, and the report says where they are
    out = tmp_path / "filtered"
    assert run(args_for(mixed, tiny_qwen2_5_vl, tmp_path, budget=budget, write_filtered=out)) == 0
    kept = pq.read_table(out / "train.parquet")
    assert kept.num_rows == 1 and kept.column_names == pq.read_table(mixed / "train.parquet").column_names
    assert json.loads((out / "prompt_lengths.json").read_text())["filtered"] == str(out.resolve())


def test_summarize_lists_overlong_rows():
    # rows 1 and 3 exceed a budget of 10
    summary = summarize([5, 12, 7, 11], 10)
    assert summary["overlong"] == 2 and summary["overlong_rows"] == [1, 3] and summary["max"] == 12


def test_recipe_supplies_the_settings_it_trains_with(tiny_qwen2_5_vl, tmp_path):
    # measuring with other pixel limits than training would count other image tokens than EasyR1 will see
    dataset = write_tiny_dataset(tmp_path / "data", CUE_SEARCH_PROBLEM, [(640, 480), (40, 32)], rows=1)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    recipe = REPO_ROOT / "config" / "locus_qwen2_5_vl_7b.yaml"
    args = parser.parse_args([str(dataset), "--model", str(tiny_qwen2_5_vl), "--recipe", str(recipe), "--quiet"])
    assert run(args) == 0
    report = json.loads((dataset / "prompt_lengths.json").read_text())
    settings = read_recipe(recipe)
    assert (report["min_pixels"], report["max_pixels"]) == (settings.min_pixels, settings.max_pixels)
    assert report["max_prompt_length"] == settings.max_prompt_length
    assert report["format_prompt"] == settings.format_prompt


def test_without_budget_or_recipe_is_an_error(tiny_qwen2_5_vl, tmp_path, capsys):
    # a measurement without a budget cannot say which rows EasyR1 would drop
    dataset = write_tiny_dataset(tmp_path / "data", CUE_SEARCH_PROBLEM, [(64, 64), (32, 32)], rows=1)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert run(parser.parse_args([str(dataset), "--model", str(tiny_qwen2_5_vl)])) == 2
    assert "--max-prompt-length or --recipe" in capsys.readouterr().err


def test_filtered_copy_into_the_dataset_itself_is_refused(tiny_qwen2_5_vl, tmp_path, capsys):
    # writing train.parquet over the file being read would truncate it mid-read: refused before anything runs
    dataset = write_tiny_dataset(tmp_path / "data", CUE_SEARCH_PROBLEM, [(640, 480), (40, 32)], rows=2)
    before = (dataset / "train.parquet").read_bytes()
    assert run(args_for(dataset, tiny_qwen2_5_vl, tmp_path, write_filtered=dataset)) == 2
    assert "is the dataset itself" in capsys.readouterr().err
    assert (dataset / "train.parquet").read_bytes() == before


def test_filtered_copy_with_a_limit_fails_before_measuring(tmp_path, capsys):
    # a partial measurement cannot decide which rows to keep; said at once (the model is not even looked up)
    dataset = write_tiny_dataset(tmp_path / "data", CUE_SEARCH_PROBLEM, [(640, 480), (40, 32)], rows=2)
    args = args_for(dataset, tmp_path / "no-model", tmp_path, write_filtered=tmp_path / "out", limit=1)
    assert run(args) == 2
    assert "needs every row measured" in capsys.readouterr().err
