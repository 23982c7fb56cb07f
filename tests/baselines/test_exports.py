"""Both exporters, read back: image order, ground truth in the chosen frame, no box in the student's prompt."""

import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from locus_baselines import export_sft, export_text_cue
from locus_baselines.annotations import Annotation, rewrite_annotations
from locus_data.rows import iter_rows
from locus_data.validate import validate
from locus_reward.parsing import parse_response

from .tiny_dataset import write_dataset


RATIONALE = "The cue is the dark patch in the upper left, beside the lighter wall."


def write_annotations(dataset: Path, task: str) -> Path:
    """ok for every row except train row 2 (failed) and train row 3 (never annotated)."""
    records = []
    for split in ("train", "val"):
        for row in iter_rows(split, dataset / f"{split}.parquet"):
            if split == "train" and row.index == 3:
                continue
            text = RATIONALE if task == "rationale" else f"the plain block number {row.index} in {split}"
            status = "failed" if split == "train" and row.index == 2 else "ok"
            reason = "http 500: down" if status == "failed" else None
            records.append(Annotation(row.key, task, status, text if status == "ok" else None, reason, 1, "t"))
    path = dataset / f"annotations_{task}.jsonl"
    rewrite_annotations(path, records)
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize(
    "frame, boxes",
    [
        # train rows 0 (640x480, box [10, 20, 60, 90]) and 1 (500x375, box [11, 20, 61, 90])
        ("qwen2_5_vl", [[10, 20, 60, 89], [11, 19, 61, 87]]),  # seen as 644x476 and 504x364 (within the limits)
        ("qwen3_vl", [[16, 42, 94, 188], [22, 53, 122, 240]]),  # 0-1000 of width and height
        ("original", [[10, 20, 60, 90], [11, 20, 61, 90]]),  # stored pixels
    ],
)
def test_sft_export_reads_back_in_the_chosen_frame(dataset, tmp_path, frame, boxes):
    annotations = write_annotations(dataset, "rationale")
    out = tmp_path / "sft"
    args = ["--data", str(dataset), "--annotations", str(annotations), "--out", str(out), "--coord-frame", frame]
    assert export_sft.main([*args, "--format-prompt", "none"]) == 0
    train = read_jsonl(out / "train.jsonl")
    source = {row.index: row for row in iter_rows("train", dataset / "train.parquet")}
    assert [s["key"] for s in train] == [source[i].key for i in (0, 1, 4, 5, 6, 7)]  # failed and missing skipped
    for sample, expected in zip(train, boxes):
        user, assistant = sample["messages"]
        parsed = parse_response(assistant["content"])
        assert parsed.format_ok and list(parsed.box) == expected  # the RL reward reads the SFT target as intended
        assert assistant["content"].startswith(f"<think>{RATIONALE}</think><answer>")
    for sample in train:
        row = source[int(sample["key"].split("/")[1].split("-")[0])]
        assert [(out / p).read_bytes() for p in sample["images"]] == [row.image_bytes(0), row.image_bytes(1)]
        assert sample["images"][0].endswith("_full.jpg") and sample["images"][1].endswith("_cue.png")
        user = sample["messages"][0]
        assert user["role"] == "user" and user["content"] == row.problem  # --format-prompt none: plain problem
        assert user["content"].count("<image>") == len(sample["images"]) == 2
        assert not re.search(r"\d", user["content"])  # no box, no number at all in the student's prompt
    info = json.loads((out / "export_info.json").read_text())
    assert info["counts"]["train"] == {"written": 6, "failed": 1, "missing": 1}
    assert info["llamafactory_args"] == {"image_min_pixels": 1024, "image_max_pixels": 409600}  # the recipes' limits
    registered = json.loads((out / "dataset_info.json").read_text())
    assert registered["locus_sft_val"]["file_name"] == "val.jsonl"
    assert registered["locus_sft_train"]["formatting"] == "sharegpt"


def test_sft_export_renders_the_format_prompt_like_easyr1(dataset, tmp_path):
    prompt = tmp_path / "format.jinja"
    prompt.write_text("{{ content | trim }} Think in <think></think>, then answer in <answer></answer>.")
    annotations = write_annotations(dataset, "rationale")
    out = tmp_path / "sft"
    args = ["--data", str(dataset), "--annotations", str(annotations), "--out", str(out)]
    assert export_sft.main([*args, "--format-prompt", str(prompt)]) == 0
    user = read_jsonl(out / "val.jsonl")[0]["messages"][0]["content"]
    assert user.endswith("bounding box in the full image. Think in <think></think>, then answer in <answer></answer>.")


def test_sft_export_takes_frame_limits_and_prompt_from_the_recipe(dataset, tmp_path, repo_root):
    recipe = repo_root / "config" / "locus_qwen3_vl_4b.yaml"
    if not recipe.is_file():
        pytest.skip("recipe config not in this checkout")
    annotations = write_annotations(dataset, "rationale")
    out = tmp_path / "sft"
    args = ["--data", str(dataset), "--annotations", str(annotations), "--out", str(out), "--recipe", str(recipe)]
    assert export_sft.main([*args, "--max-pixels", "200000"]) == 0  # a flag still beats the recipe
    info = json.loads((out / "export_info.json").read_text())
    assert (info["coord_frame"], info["min_pixels"], info["max_pixels"]) == ("qwen3_vl", 1024, 200000)
    sample = read_jsonl(out / "train.jsonl")[0]
    assert "scaled to integers from 0 to 1000" in sample["messages"][0]["content"]  # the recipe's format prompt
    assert sample["messages"][1]["content"].endswith("<answer>[16, 42, 94, 188]</answer>")


def test_sft_export_refuses_refexp_annotations(dataset, tmp_path, capsys):
    # refexp answers are not rationales; exporting them would train on the wrong text
    annotations = write_annotations(dataset, "refexp")
    args = ["--data", str(dataset), "--annotations", str(annotations), "--out", str(tmp_path / "sft")]
    assert export_sft.main(args) == 2
    assert "needs rationale annotations" in capsys.readouterr().err


def test_sft_export_refuses_to_mix_with_an_old_export(dataset, tmp_path):
    annotations = write_annotations(dataset, "rationale")
    args = ["--data", str(dataset), "--annotations", str(annotations), "--out", str(tmp_path / "sft")]
    assert export_sft.main([*args, "--format-prompt", "none"]) == 0
    assert export_sft.main([*args, "--format-prompt", "none"]) == 2  # stale images could be left behind
    (tmp_path / "sft" / "notes.txt").write_text("mine")
    assert export_sft.main([*args, "--format-prompt", "none", "--overwrite"]) == 0
    assert (tmp_path / "sft" / "notes.txt").read_text() == "mine"  # --overwrite removes only what exports write


def test_text_cue_export_refuses_to_write_over_its_input(dataset, capsys):
    # --out equal to --data would replace train.parquet with the text-cue rows
    annotations = write_annotations(dataset, "refexp")
    args = ["--data", str(dataset), "--annotations", str(annotations), "--out", str(dataset), "--overwrite"]
    assert export_text_cue.main(args) == 2
    assert "is the dataset directory" in capsys.readouterr().err


def test_text_cue_export_keeps_the_contract_with_one_image(dataset, tmp_path):
    annotations = write_annotations(dataset, "refexp")
    out = tmp_path / "text_cue"
    args = ["--data", str(dataset), "--annotations", str(annotations), "--out", str(out)]
    assert export_text_cue.main(args) == 0
    for split, kept in (("train", [0, 1, 4, 5, 6, 7]), ("val", [0, 1, 2, 3])):
        source = pq.read_table(dataset / f"{split}.parquet")
        exported = pq.read_table(out / f"{split}.parquet")
        assert exported.schema == source.schema  # same columns and types: same loader, reward and evaluator
        src_rows = source.to_pylist()
        for row, i in zip(exported.to_pylist(), kept, strict=True):
            expression = f"the plain block number {i} in {split}"
            assert row["problem"] == export_text_cue.text_cue_problem(expression)
            assert row["problem"].count("<image>") == 1
            assert row["images"] == src_rows[i]["images"][:1]  # the full image only, bytes as stored
            assert row["answer"] == src_rows[i]["answer"]  # same ground truth, so the same reward applies
            assert {k: v for k, v in row.items() if k not in ("problem", "images")} == {
                k: v for k, v in src_rows[i].items() if k not in ("problem", "images")
            }


def test_text_cue_export_loads_with_datasets(dataset, tmp_path):
    datasets = pytest.importorskip("datasets")
    annotations = write_annotations(dataset, "refexp")
    out = tmp_path / "text_cue"
    args = ["--data", str(dataset), "--annotations", str(annotations), "--out", str(out)]
    assert export_text_cue.main(args) == 0
    files = {"train": str(out / "train.parquet"), "val": str(out / "val.parquet")}
    loaded = datasets.load_dataset("parquet", data_files=files, cache_dir=str(tmp_path / "hf_cache"))
    assert (loaded["train"].num_rows, loaded["val"].num_rows) == (6, 4)
    images = loaded["train"][0]["images"]
    # EasyR1 needs a list of image dicts with bytes (process_image opens dict["bytes"])
    assert isinstance(images, list) and len(images) == 1 and images[0]["bytes"].startswith(b"\xff\xd8")


def test_annotations_of_a_rebuilt_dataset_do_not_match(dataset, tmp_path, capsys):
    # same row positions, different examples: the key's hash keeps old annotations from being paired with them
    annotations = write_annotations(dataset, "refexp")
    rebuilt = write_dataset(tmp_path / "rebuilt", 8, 4)
    for split in ("train", "val"):
        table = pq.read_table(rebuilt / f"{split}.parquet")
        ids = [i + 7 for i in table.column("image_id").to_pylist()]
        table = table.set_column(table.schema.get_field_index("image_id"), "image_id", [ids])
        pq.write_table(table, rebuilt / f"{split}.parquet")
    args = ["--data", str(rebuilt), "--annotations", str(annotations), "--out", str(tmp_path / "text_cue")]
    assert export_text_cue.main(args) == 2
    assert "no ok annotation" in capsys.readouterr().err


def test_text_cue_export_passes_the_launchers_validation(dataset, tmp_path):
    # the text-cue launcher validates with one image per row: an export must pass it, and the cue-search check
    # (two images) must reject it, so the preflight cannot mix the two datasets up
    from locus_train.preflight import run_validate

    annotations = write_annotations(dataset, "refexp")
    out = tmp_path / "text_cue"
    assert export_text_cue.main(["--data", str(dataset), "--annotations", str(annotations), "--out", str(out)]) == 0
    assert validate(out, decode=-1, progress=False, num_images=1).ok
    assert not validate(out, decode=-1, progress=False, num_images=2).ok
    assert run_validate(out, 1).returncode == 0
