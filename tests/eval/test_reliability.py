"""Issue 20 for ``locus-eval``: wrong input, run as a user runs it, ends in one line naming the file or flag.

Each test is one class of the issue, parametrised over the commands it covers: the installed ``locus-eval`` of the
interpreter running the tests, real files (tiny random checkpoints, parquet/jsonl/TSV written here), the exit status,
the message (one line, no ``Traceback``, names the file or flag), and the inputs byte-identical afterwards.
"""

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.testing_utils import installed_command

from .eval_helpers import bomb_png, jpeg_bytes, scene, write_predictions, write_val_parquet


REPO_ROOT = Path(__file__).resolve().parents[2]
Q25 = str(REPO_ROOT / "config" / "locus_qwen2_5_vl_7b.yaml")
Q3 = str(REPO_ROOT / "config" / "locus_qwen3_vl_4b.yaml")
EXAMPLES = [{"size": (160, 120), "box": (20, 30, 60, 70)}, {"size": (120, 160), "box": (40, 40, 100, 120)}]


def tree_digest(*paths: Path) -> str:
    """One hash of every file under ``paths`` (names and bytes): inputs must come out of a refusal unchanged."""
    digest = hashlib.sha256()
    for root in paths:
        for file in sorted([root] if root.is_file() else root.rglob("*")):
            if file.is_file():
                digest.update(str(file).encode() + file.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def files(tmp_path_factory, tiny_qwen2_5_vl, tiny_qwen3_vl_thinking):
    """Every input the cases below need, written once."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = tmp_path_factory.mktemp("reliability")
    dataset = root / "ds"
    dataset.mkdir()
    val = write_val_parquet(dataset / "val.parquet", EXAMPLES)
    write_val_parquet(dataset / "train.parquet", EXAMPLES)
    other = root / "other.parquet"
    pq.write_table(pa.table({"a": [1, 2], "b": ["x", "y"]}), other)
    empty = root / "empty.parquet"
    pq.write_table(pq.read_table(val).slice(0, 0), empty)
    # a cue-search row whose full image is a decompression bomb
    table = pq.read_table(val).to_pylist()
    table[0]["images"][0] = {"bytes": bomb_png(), "path": "bomb.png"}
    bomb = root / "bomb.parquet"
    pq.write_table(pa.Table.from_pylist(table), bomb)
    # RefCOCO jsonl (LOCUS layout) with real, bomb and empty variants
    bench = root / "bench"
    (bench / "images").mkdir(parents=True)
    scene(96, 64).save(bench / "images" / "0.jpg")
    (bench / "images" / "bomb.png").write_bytes(bomb_png())
    (bench / "images" / "trunc.jpg").write_bytes(jpeg_bytes(scene(96, 64))[:300])
    line = {"image": "images/0.jpg", "bbox": [10, 10, 30, 20], "refexp": "the red square"}
    (bench / "refcoco_val.jsonl").write_text(json.dumps(line) + "\n")
    (bench / "refcoco_empty_val.jsonl").write_text("")
    (bench / "refcoco_bomb_val.jsonl").write_text(json.dumps({**line, "image": "images/bomb.png"}) + "\n")
    (bench / "refcoco_trunc_val.jsonl").write_text(json.dumps({**line, "image": "images/trunc.jpg"}) + "\n")
    (bench / "hrbench_empty.tsv").write_text("index\tquestion\tanswer\tcategory\tA\tB\tC\tD\timage\n")
    # a finished cue-search run (predictions + generation.json + its own report) made from `val`
    run = root / "run"
    run.mkdir()
    write_predictions(run / "predictions.jsonl", ["[20, 30, 60, 70]", "no box"], image_ids=[1000, 1001])
    (run / "generation.json").write_text(json.dumps({"data": str(val), "min_pixels": 1024, "max_pixels": 409600}))
    (run / "metrics.json").write_text(json.dumps({"n": 2, "scoring": {"coord_frame": "qwen2_5_vl"}}))
    shifted = write_val_parquet(root / "shifted.parquet", [{**e, "box": (0, 0, 10, 10)} for e in EXAMPLES])
    text = root / "notes.txt"
    text.write_text("hello\n")
    return {
        "T25": tiny_qwen2_5_vl,
        "T3": tiny_qwen3_vl_thinking,
        "ds": dataset,
        "val": val,
        "other": other,
        "empty": empty,
        "bomb": bomb,
        "bench": bench,
        "run": run,
        "shifted": shifted,
        "text": text,
        "root": root,
    }


def locus_eval(files: dict, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    argv = [str(a).format(**{k: str(v) for k, v in files.items()}, Q25=Q25, Q3=Q3) for a in args]
    return subprocess.run(
        [*installed_command("locus-eval"), *argv],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"},
        timeout=300,
    )


def refused(result: subprocess.CompletedProcess, *needles: str) -> str:
    """Exit 2 and one ``locus-eval ...: error:`` line (after argparse's usage, if any) naming ``needles``."""
    err = result.stderr.strip()
    assert result.returncode == 2, (result.returncode, err[-2000:])
    assert "Traceback" not in err, err
    last = err.splitlines()[-1]
    assert last.startswith("locus-eval ") and " error: " in last, err
    for needle in needles:
        assert needle in last, (needle, last)
    return last


GEN = ("--backend", "hf", "--max-new-tokens", "2")

WRONG_FILE = {
    # (class 1) each: a file of another kind where the command expects its own, and what the line must name
    "score: a parquet of another schema": (
        (
            "score",
            "--data",
            "{other}",
            "--predictions",
            "{run}/predictions.jsonl",
            "--out",
            "{root}/o1",
            "--recipe",
            "{Q25}",
            "--allow-other-data",
        ),
        ("{other}", "missing column"),
    ),
    "bench: a cue-search parquet as HR-Bench": (
        ("bench", *GEN, "--model", "{T25}", "--benchmark", "hrbench", "--data", "{val}", "--out", "{root}/o2"),
        ("{val}", "not an HR-Bench TSV"),
    ),
    "bench: a cue-search parquet as RefCOCO": (
        ("bench", *GEN, "--model", "{T25}", "--benchmark", "refcoco", "--data", "{val}", "--out", "{root}/o3"),
        ("{val}", "missing column"),
    ),
    "cue-search: the dataset folder as --data": (
        ("cue-search", *GEN, "--model", "{T25}", "--data", "{ds}", "--out", "{root}/o4", "--recipe", "{Q25}"),
        ("{ds}", "val.parquet"),
    ),
    "cue-search: --out a file": (
        ("cue-search", *GEN, "--model", "{T25}", "--data", "{val}", "--out", "{text}", "--recipe", "{Q25}"),
        ("--out {text}", "is a file"),
    ),
    "plot-aib: a file for the run folder": (("plot-aib", "{text}", "--out", "{root}/o5"), ("{text}", "is a file")),
    "plot-training: a parquet as the log": (
        ("plot-training", "{val}", "--out", "{root}/o6.png"),
        ("{val}", "not a text file"),
    ),
}


@pytest.mark.parametrize("case", WRONG_FILE, ids=list(WRONG_FILE))
def test_class1_wrong_file_is_one_line_naming_it(files, case):
    # a decoder error or a KeyError without the path leaves a newcomer guessing which input was wrong
    args, needles = WRONG_FILE[case]
    before = tree_digest(files["ds"], files["run"], files["other"], files["text"])
    fill = {k: str(v) for k, v in files.items()}
    refused(locus_eval(files, *args), *(n.format(**fill) for n in needles))
    assert tree_digest(files["ds"], files["run"], files["other"], files["text"]) == before


EMPTY = {
    # (class 2) zero rows, zero items, counts that mean nothing: an error, never a NaN table with exit 0
    "cue-search: zero-row parquet": (
        ("cue-search", *GEN, "--model", "{T25}", "--data", "{empty}", "--out", "{root}/e1", "--recipe", "{Q25}"),
        ("{empty}", "no rows"),
        "e1",
    ),
    "score: zero-row parquet": (
        ("score", "--data", "{empty}", "--predictions", "{run}/predictions.jsonl", "--out", "{root}/e2",
         "--coord-frame", "qwen2_5_vl", "--allow-other-data"),
        ("{empty}", "no rows"),
        "e2",
    ),
    "bench: empty RefCOCO jsonl": (
        ("bench", *GEN, "--model", "{T25}", "--benchmark", "refcoco", "--data", "{bench}/refcoco_empty_val.jsonl",
         "--out", "{root}/e3"),
        ("refcoco_empty_val.jsonl", "no refcoco items"),
        "e3",
    ),
    "bench: header-only HR-Bench TSV": (
        ("bench", *GEN, "--model", "{T25}", "--benchmark", "hrbench", "--data", "{bench}/hrbench_empty.tsv",
         "--out", "{root}/e4"),
        ("hrbench_empty.tsv", "no hrbench items"),
        "e4",
    ),
    "suppress: empty RefCOCO jsonl": (
        ("suppress", "--benchmark", "refcoco", "--data", "{bench}/refcoco_empty_val.jsonl", "--out", "{root}/e5"),
        ("refcoco_empty_val.jsonl", "no RefCOCO rows"),
        "e5",
    ),
    "cue-search: --limit 0": (
        ("cue-search", *GEN, "--model", "{T25}", "--data", "{val}", "--out", "{root}/e6", "--recipe", "{Q25}",
         "--limit", "0"),
        ("--limit", ">= 1"),
        "e6",
    ),
    "bench: --batch-size -1": (
        ("bench", *GEN, "--model", "{T25}", "--benchmark", "refcoco", "--data", "{bench}/refcoco_val.jsonl",
         "--out", "{root}/e7", "--batch-size", "-1"),
        ("--batch-size", ">= 1"),
        "e7",
    ),
    "aib: --limit 0": (
        ("aib", "--model", "{T25}", "--recipe", "{Q25}", "--data", "{val}", "--out", "{root}/e8", "--limit", "0"),
        ("--limit", ">= 1"),
        "e8",
    ),
    "plot-training: --ema 1.5": (
        ("plot-training", "{run}", "--out", "{root}/e9.png", "--ema", "1.5"),
        ("--ema", "[0, 1)"),
        "e9.png",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", EMPTY, ids=list(EMPTY))
def test_class2_empty_or_degenerate_input_is_an_error(files, case):
    # zero examples used to score n=0 / NaN and exit 0: a number that looks like a result
    args, needles, out = EMPTY[case]
    fill = {k: str(v) for k, v in files.items()}
    refused(locus_eval(files, *args), *(n.format(**fill) for n in needles))
    assert not (files["root"] / out).exists()  # nothing half-written left behind


def test_class3_outputs_never_land_on_inputs(files, tmp_path):
    # each --out below is, holds or sits inside an input; before the fix the first three wrote over them
    import shutil

    ds = shutil.copytree(files["ds"], tmp_path / "ds")
    run = shutil.copytree(files["run"], tmp_path / "run")
    bench = shutil.copytree(files["bench"], tmp_path / "bench")
    model = shutil.copytree(files["T25"], tmp_path / "model")
    before = tree_digest(ds, run, bench, model)
    cases = [
        (("suppress", "--benchmark", "refcoco", "--data", f"{bench}/refcoco_val.jsonl", "--out", str(bench)), "holds"),
        (("suppress", "--benchmark", "refcoco", "--data", f"{bench}/refcoco_val.jsonl", "--out", f"{bench}/images"),
         "holds"),
        (("score", "--data", f"{ds}/val.parquet", "--predictions", f"{run}/predictions.jsonl", "--recipe", Q25),
         "report the run itself wrote"),
        (("score", "--data", f"{ds}/val.parquet", "--predictions", f"{run}/predictions.jsonl", "--recipe", Q25,
          "--out", f"{run}/predictions.jsonl"), "is an input"),
        (("cue-search", *GEN, "--model", str(model), "--data", f"{ds}/val.parquet", "--out", str(ds), "--recipe", Q25),
         "holds an input"),
        (("bench", *GEN, "--model", str(model), "--benchmark", "refcoco", "--data", f"{bench}/refcoco_val.jsonl",
          "--out", str(model)), "is an input"),
    ]  # fmt: skip
    for args, needle in cases:
        refused(locus_eval(files, *args), needle)
    assert tree_digest(ds, run, bench, model) == before


FRAME = {
    # (class 4) a checkpoint of one family run in another family's frame: refused before the model loads
    "cue-search: Qwen3-VL recipe, Qwen2.5-VL checkpoint": (
        "cue-search", *GEN, "--model", "{T25}", "--data", "{val}", "--out", "{root}/f1", "--recipe", "{Q3}"),
    "bench: Qwen3-VL recipe, Qwen2.5-VL checkpoint": (
        "bench", *GEN, "--model", "{T25}", "--benchmark", "refcoco", "--data", "{bench}/refcoco_val.jsonl",
        "--out", "{root}/f2", "--recipe", "{Q3}"),
    "aib: Qwen2.5-VL recipe, Qwen3-VL checkpoint": (
        "aib", "--model", "{T3}", "--recipe", "{Q25}", "--data", "{val}", "--out", "{root}/f3"),
    "lmms-eval: Qwen3-VL backbone, Qwen2.5-VL checkpoint": (
        "lmms-eval", "--model", "{T25}", "--backbone", "qwen3_vl_4b", "--out", "{root}/f4", "--dry-run"),
    "cue-search: --coord-frame qwen2_5_vl on Qwen3-VL": (
        "cue-search", *GEN, "--model", "{T3}", "--data", "{val}", "--out", "{root}/f5", "--coord-frame", "qwen2_5_vl"),
}  # fmt: skip


@pytest.mark.parametrize("case", FRAME, ids=list(FRAME))
def test_class4_frame_mismatch_is_refused_before_the_model_loads(files, case):
    # the worst class: these all produced numbers and exit 0, boxes read in the other family's frame
    line = refused(locus_eval(files, *FRAME[case]), "wrong frame", "--allow-frame-mismatch")
    assert "-pixel patches" in line and "checkpoint" in line
    assert not any((files["root"] / f"f{i}").exists() for i in range(1, 6))


def test_class4_the_override_runs_and_bench_takes_the_checkpoints_frame(files):
    # --allow-frame-mismatch is the explicit way out; without --recipe, bench reads the frame from config.json
    result = locus_eval(files, *FRAME["lmms-eval: Qwen3-VL backbone, Qwen2.5-VL checkpoint"], "--allow-frame-mismatch")
    assert result.returncode == 0, result.stderr
    out = files["root"] / "b3"
    result = locus_eval(files, "bench", *GEN, "--model", "{T3}", "--benchmark", "refcoco", "--limit", "1",
                        "--data", "{bench}/refcoco_val.jsonl", "--out", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "metrics.json").read_text())["coord_frame"] == "qwen3_vl"


def test_class4_score_ties_predictions_to_their_run(files):
    # a run's predictions scored against another parquet, or in another recipe's frame, scored silently before
    refused(
        locus_eval(
            files,
            "score",
            "--data",
            "{shifted}",
            "--predictions",
            "{run}/predictions.jsonl",
            "--recipe",
            "{Q25}",
            "--out",
            "{root}/s1",
        ),  # fmt: skip
        "generated from",
        "--allow-other-data",
    )
    refused(
        locus_eval(
            files,
            "score",
            "--data",
            "{val}",
            "--predictions",
            "{run}/predictions.jsonl",
            "--recipe",
            "{Q3}",
            "--out",
            "{root}/s2",
        ),  # fmt: skip
        "coord_frame=qwen2_5_vl",
        "--coord-frame qwen3_vl",
    )


HOSTILE = {
    # (class 7) a 20000 x 20000 PNG header or a truncated JPEG in a single-image command: one line naming it
    "cue-search: bomb row": (
        ("cue-search", *GEN, "--model", "{T25}", "--data", "{bomb}", "--out", "{root}/h1", "--recipe", "{Q25}"),
        ("{bomb} row 0", "shrink the image"),
    ),
    "bench: bomb RefCOCO image": (
        ("bench", *GEN, "--model", "{T25}", "--benchmark", "refcoco", "--data", "{bench}/refcoco_bomb_val.jsonl",
         "--out", "{root}/h2"),
        ("refcoco_bomb_val.jsonl", "shrink the image"),
    ),
    "suppress: bomb RefCOCO image": (
        ("suppress", "--benchmark", "refcoco", "--data", "{bench}/refcoco_bomb_val.jsonl", "--out", "{root}/h3"),
        ("refcoco_bomb_val.jsonl", "shrink the image"),
    ),
    "suppress: truncated JPEG": (
        ("suppress", "--benchmark", "refcoco", "--data", "{bench}/refcoco_trunc_val.jsonl", "--out", "{root}/h4"),
        ("refcoco_trunc_val.jsonl", "image cannot be"),
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", HOSTILE, ids=list(HOSTILE))
def test_class7_hostile_images_are_one_line(files, case):
    # PIL's DecompressionBombError / truncated-file OSError used to reach the user as a traceback
    args, needles = HOSTILE[case]
    fill = {k: str(v) for k, v in files.items()}
    refused(locus_eval(files, *args), *(n.format(**fill) for n in needles))
