"""Issue 20, as a hostile newcomer hits it: wrong files, empty input, outputs over inputs, checks that promise more
than they check, rules against their docs, hostile images, a closed pipe. One test per class, parametrised over the
``locus-data`` commands it covers.

Every case runs the command as a user does (the console script's module through the interpreter running the tests,
so the verdict does not depend on where the project is installed), on real files built here (synthetic COCO, a
real build, parquet files rewritten from it), and checks the exit status, a one-line message naming the file or
flag (never a ``Traceback``), and that every input is byte-identical afterwards.
"""

import hashlib
import json
import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from locus_baselines.annotations import Annotation
from locus_data.rows import example_key
from locus_data.synth import synth
from tests.testing_utils import require_torch

from .conftest import DEFAULT_YAML, REPO, cli, run_build


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cli(*args), capture_output=True, text=True, cwd=cwd, env=_env())


def _env() -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "OPENAI_API_KEY": ""}


def one_line_error(done: subprocess.CompletedProcess, *needles: str) -> str:
    """Exit 2, no traceback, one stderr line holding every needle."""
    err = done.stderr.strip()
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert "Traceback" not in done.stderr
    last = err.splitlines()[-1]
    assert "error" in last and all(n in last for n in needles), last
    return last


def digest(path: Path) -> str:
    """A hash of a file or of every file under a folder (names and bytes)."""
    h = hashlib.sha256()
    for p in sorted([path] if path.is_file() else path.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(path.parent)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width x height`` (a decompression bomb as PIL sees it) in a few bytes."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def rewrite(src: Path, dst: Path, change) -> None:
    """Copy a dataset folder, passing every row of both splits through ``change(index, row)``."""
    dst.mkdir(parents=True)
    for split in ("train", "val"):
        table = pq.read_table(src / f"{split}.parquet")
        rows = [change(i, r) for i, r in enumerate(table.to_pylist())]
        pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), dst / f"{split}.parquet")


@pytest.fixture(scope="module")
def files(reference, tmp_path_factory) -> dict[str, Path]:
    """The wrong, empty, shifted and hostile inputs every case below reads (built once)."""
    root = tmp_path_factory.mktemp("reliability")
    f = {"ds": root / "ds"}
    shutil.copytree(reference, f["ds"])
    # another parquet schema under the split names
    f["other"] = root / "other"
    f["other"].mkdir()
    for split in ("train", "val"):
        pq.write_table(pa.table({"id": [1, 2], "text": ["a", "b"]}), f["other"] / f"{split}.parquet")
    # the right schema, zero rows
    f["empty"] = root / "empty"
    f["empty"].mkdir()
    for split in ("train", "val"):
        pq.write_table(pq.read_table(f["ds"] / f"{split}.parquet").slice(0, 0), f["empty"] / f"{split}.parquet")

    def shifted(i, row, dx=4.0):
        answer = json.loads(row["answer"])
        x1, y1, x2, y2 = answer["box"]
        d = dx if x2 + dx <= answer["width"] else -dx
        answer["box"] = [x1 + d, y1, x2 + d, y2]
        return {**row, "answer": json.dumps(answer)}

    f["shift4"] = root / "shift4"
    rewrite(f["ds"], f["shift4"], shifted)

    def bomb(i, row):  # every fifth row's full image, row 0 included
        if i % 5:
            return row
        answer = json.loads(row["answer"])
        answer.update(width=20000, height=20000)
        return {
            **row,
            "answer": json.dumps(answer),
            "images": [{"bytes": png_header(20000, 20000), "path": None}, row["images"][1]],
        }

    f["bomb"] = root / "bomb"
    rewrite(f["ds"], f["bomb"], bomb)
    # annotations of the real dataset (every row ok), as `locus-data annotate` writes them
    for task in ("rationale", "refexp"):
        lines = []
        for split in ("train", "val"):
            table = pq.read_table(f["ds"] / f"{split}.parquet", columns=["answer", "image_id"])
            for i, (answer, image_id) in enumerate(zip(table["answer"].to_pylist(), table["image_id"].to_pylist())):
                key = example_key(split, i, answer, image_id)
                lines.append(Annotation(key, task, "ok", "the red square on the left", None, 1, "t").to_line())
        f[task] = root / f"ann_{task}.jsonl"
        f[task].write_text("".join(lines))
    f["text"] = root / "note.txt"
    f["text"].write_text("hello\n")
    f["folder"] = root / "a_folder"
    f["folder"].mkdir()
    return f


ANNOTATE = [
    "annotate",
    "--task",
    "refexp",
    "--endpoint",
    "http://127.0.0.1:9/v1",
    "--model",
    "t",
    "--max-retries",
    "0",
]
RECIPE = str(REPO / "config" / "locus_qwen2_5_vl_7b.yaml")


# --- class 1: the wrong file for the command ------------------------------------------------------------------


@pytest.mark.parametrize(
    "command, needles",
    [
        (lambda f, o: ["stats", f["other"]], ["not a LOCUS dataset", "image_id"]),
        (lambda f, o: ["preview", f["other"], "--out", o / "p.png"], ["not a LOCUS dataset", "train.parquet"]),
        (
            lambda f, o: ["measure-prompts", f["other"], "--model", o / "no_model", "--max-prompt-length", "9"],
            ["not a LOCUS dataset", "problem"],
        ),
        (lambda f, o: [*ANNOTATE, "--data", f["other"], "--out", o / "a.jsonl"], ["not a LOCUS dataset"]),
        (
            lambda f, o: ["export-text-cue", "--data", f["other"], "--annotations", f["refexp"], "--out", o / "x"],
            ["not a LOCUS dataset"],
        ),
        (
            lambda f, o: ["export-sft", "--data", f["other"], "--annotations", f["rationale"], "--out", o / "x"],
            ["not a LOCUS dataset"],
        ),
        # a split file where the dataset folder is expected: named as a file, with the folder to give instead
        (lambda f, o: ["stats", f["ds"] / "train.parquet"], ["is a file", "dataset folder"]),
        (
            lambda f, o: ["measure-prompts", f["ds"] / "val.parquet", "--model", "m", "--max-prompt-length", "9"],
            ["is a file", "dataset folder"],
        ),
        (lambda f, o: [*ANNOTATE, "--data", f["ds"] / "train.parquet", "--out", o / "a.jsonl"], ["is a file"]),
        # a file where an output folder is expected, and a folder where an output file is expected
        (lambda f, o: ["build", "--coco-root", f["coco"], "--out", f["text"]], ["--out", "is a file"]),
        (lambda f, o: ["synth", "--out", f["text"], "--num-images", "1"], ["--out", "is a file"]),
        (lambda f, o: ["preview", f["ds"], "--out", f["folder"]], ["--out", "is a directory"]),
        (lambda f, o: ["preview", f["ds"], "--out", o / "p.txt"], ["--out", ".png"]),
        (
            lambda f, o: ["measure-prompts", f["ds"], "--model", "m", "--recipe", RECIPE, "--report", f["folder"]],
            ["--report", "is a directory"],
        ),
        (lambda f, o: [*ANNOTATE, "--data", f["ds"], "--out", f["folder"]], ["--out", "is a directory"]),
        (
            lambda f, o: ["export-text-cue", "--data", f["ds"], "--annotations", f["refexp"], "--out", f["text"]],
            ["--out", "is a file"],
        ),
        (
            lambda f, o: ["export-sft", "--data", f["ds"], "--annotations", f["folder"], "--out", o / "x"],
            ["--annotations", "is a directory"],
        ),
        # a data config where a training recipe is expected
        (
            lambda f, o: ["measure-prompts", f["ds"], "--model", "m", "--recipe", DEFAULT_YAML],
            ["not an EasyR1 training recipe"],
        ),
        (
            lambda f, o: ["build", "--config", REPO / "config" / "data", "--coco-root", f["coco"], "--out", o / "b"],
            ["is a directory"],
        ),
    ],
)
def test_class1_wrong_file_is_named_in_one_line(files, coco, tmp_path, command, needles):
    # a parquet of another schema, a file for a folder or the reverse: which file, what was expected, no traceback
    f = {**files, "coco": coco}
    before = {name: digest(path) for name, path in f.items()}
    done = run(*map(str, command(f, tmp_path)))
    one_line_error(done, *needles)
    assert {name: digest(path) for name, path in f.items()} == before


# --- class 2: empty or degenerate input is an error, and a failed command leaves no output -----------------------


@pytest.mark.parametrize(
    "command, needles, output",
    [
        (lambda f, o: ["stats", f["empty"]], ["has no rows"], None),
        (lambda f, o: ["preview", f["empty"], "--out", o / "p.png"], ["has no rows"], "p.png"),
        (
            lambda f, o: ["measure-prompts", f["empty"], "--model", "m", "--recipe", RECIPE, "--report", o / "r.json"],
            ["has no rows"],
            "r.json",
        ),
        (lambda f, o: [*ANNOTATE, "--data", f["empty"], "--out", o / "a.jsonl"], ["has no rows"], "a.jsonl"),
        (
            lambda f, o: ["export-sft", "--data", f["empty"], "--annotations", f["rationale"], "--out", o / "x"],
            ["no ok annotation"],
            "x",
        ),
        (
            lambda f, o: ["export-text-cue", "--data", f["empty"], "--annotations", f["refexp"], "--out", o / "x"],
            ["no ok annotation"],
            "x",
        ),
        (lambda f, o: ["synth", "--out", o / "s", "--num-images", "0"], ["--num-images"], "s"),
        (lambda f, o: ["synth", "--out", o / "s", "--num-images", "-5"], ["--num-images"], "s"),
        (lambda f, o: ["synth", "--out", o / "s", "--num-images", "2", "--seed", "-1"], ["--seed"], "s"),
        (
            lambda f, o: ["measure-prompts", f["ds"], "--model", "m", "--recipe", RECIPE, "--limit", "0"],
            ["--limit must be at least 1"],
            None,
        ),
        (lambda f, o: [*ANNOTATE, "--data", f["ds"], "--out", o / "a.jsonl", "--limit", "0"], ["--limit"], "a.jsonl"),
        (
            lambda f, o: (
                [*ANNOTATE, "--data", f["ds"], "--out", o / "a.jsonl", "--teacher-min-pixels", "4096"]
                + ["--teacher-max-pixels", "1024"]
            ),
            ["--teacher-min-pixels"],
            "a.jsonl",
        ),
        (
            lambda f, o: (
                ["export-sft", "--data", f["ds"], "--annotations", f["rationale"], "--out", o / "x"]
                + ["--min-pixels", "409600", "--max-pixels", "1024"]
            ),
            ["--min-pixels"],
            "x",
        ),
        (
            lambda f, o: ["measure-prompts", f["ds"], "--model", "m", "--recipe", RECIPE, "--max-prompt-length", "0"],
            ["--max-prompt-length"],
            None,
        ),
    ],
)
def test_class2_empty_or_degenerate_input_fails_and_leaves_nothing(files, tmp_path, command, needles, output):
    # zero rows, zero images or a limit of nothing used to "succeed" with an empty result (or an empty JSONL)
    before = {name: digest(path) for name, path in files.items()}
    done = run(*map(str, command(files, tmp_path)))
    one_line_error(done, *needles)
    if output is not None:
        assert not (tmp_path / output).exists()
    assert not list(tmp_path.glob(".*.tmp"))  # no staging folder or temporary file left behind either
    assert {name: digest(path) for name, path in files.items()} == before


# --- class 3: an output over an input is refused, and --overwrite never removes a user's files ------------------


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize(
    "command, protected, needles",
    [
        # a COCO root as synth's --out: its annotations would be overwritten
        (lambda f, o: ["synth", "--out", _copy(f["coco"], o / "c"), "--num-images", "2"], "c", ["--overwrite"]),
        # the COCO root (or a folder inside it, or one holding it) as build's --out
        (lambda f, o: ["build", "--coco-root", _copy(f["coco"], o / "c"), "--out", o / "c"], "c", ["input"]),
        (
            lambda f, o: ["build", "--coco-root", _copy(f["coco"], o / "c"), "--out", o / "c" / "annotations"],
            "c",
            ["inside the input folder"],
        ),
        (lambda f, o: ["build", "--coco-root", _copy(f["coco"], o / "c"), "--out", o], "c", ["holds an input"]),
        # a split file as a report, a preview, or annotations (annotate used to cut its tail as a "torn line")
        (
            lambda f, o: (
                ["measure-prompts", _copy(f["ds"], o / "d"), "--model", "m", "--recipe", RECIPE]
                + ["--report", o / "d" / "train.parquet"]
            ),
            "d",
            ["--report", "is an input"],
        ),
        (
            lambda f, o: ["preview", _copy(f["ds"], o / "d"), "--out", o / "d" / "train.parquet"],
            "d",
            ["--out", "is an input"],
        ),
        (
            lambda f, o: [*ANNOTATE, "--data", _copy(f["ds"], o / "d"), "--out", o / "d" / "train.parquet"],
            "d",
            ["--out", "is an input"],
        ),
        # export-sft --overwrite into the folder that holds its own annotations file
        (
            lambda f, o: (
                ["export-sft", "--data", f["ds"], "--overwrite", "--out", o / "x", "--annotations"]
                + [shutil.copy(f["rationale"], (o / "x").mkdir() or o / "x" / "train.jsonl")]
            ),
            "x",
            ["holds an input"],
        ),
    ],
)
def test_class3_output_over_an_input_is_refused(files, coco, tmp_path, command, protected, needles):
    # each of these used to overwrite, truncate or mix into an input; the input must be byte-identical after
    args = [str(a) for a in command({**files, "coco": coco}, tmp_path)]
    before = digest(tmp_path / protected)
    one_line_error(run(*args), *needles)
    assert digest(tmp_path / protected) == before


def test_class3_export_overwrite_keeps_the_users_files(files, tmp_path):
    # --overwrite replaces the export's own files only: a user's file under OUT/images survived nothing before
    out = tmp_path / "sft"
    args = ["export-sft", "--data", files["ds"], "--annotations", files["rationale"], "--out", out, "--recipe", RECIPE]
    (out / "images").mkdir(parents=True)
    (out / "images" / "keep.txt").write_text("mine")
    (out / "notes.txt").write_text("mine too")
    assert run(*map(str, args)).returncode == 2  # not empty: refused without --overwrite
    done = run(*map(str, args), "--overwrite")
    assert done.returncode == 0, done.stderr
    assert (out / "images" / "keep.txt").read_text() == "mine" and (out / "notes.txt").read_text() == "mine too"
    assert (
        len(list((out / "images").glob("train_*_full.*"))) == pq.read_metadata(files["ds"] / "train.parquet").num_rows
    )


def test_class3_manifest_commands_never_overwrite_their_input(tmp_path):
    # merge-vqa / add-boxes / convert-vqa with --overwrite and --out = an input used to replace that input
    from locus_data.synth_vqa import synth_vqa

    manifest = synth_vqa(tmp_path / "vqa", 1, seed=0, progress=False)
    boxes = tmp_path / "boxes.jsonl"
    boxes.write_text("")
    before = digest(manifest)
    one_line_error(run("merge-vqa", str(manifest), "--out", str(manifest), "--overwrite"), "--out", "is an input")
    one_line_error(
        run("add-boxes", str(manifest), "--boxes", str(boxes), "--out", str(manifest), "--overwrite"), "is an input"
    )
    assert digest(manifest) == before


# --- class 5: validate checks what it promises: the GT box points at the cue's pixels ---------------------------


def test_class5_validate_catches_a_box_moved_off_its_cue(files):
    # every GT box moved 4 px right, cues unchanged: every image decodes, sizes agree; only the pixels tell
    done = run("validate", "--quiet", "--decode", "-1", str(files["shift4"]))
    assert done.returncode == 1 and "GT box does not match the cue's pixels" in done.stdout, done.stdout
    assert "Traceback" not in done.stderr
    # the control: the same dataset before the move passes, every row compared
    done = run("validate", "--quiet", "--decode", "-1", str(files["ds"]))
    assert done.returncode == 0 and done.stdout.startswith("OK"), done.stdout


# --- class 6: one rule, as documented ----------------------------------------------------------------------------


def test_class6_boxes_partly_outside_the_image_are_clamped_and_counted(tmp_path):
    # the README's rule: a box partly outside is clamped to the image, counted in stats.json, and its row's GT is
    # the visible part (inside the image); a box with too little left is skipped under below_min_size
    root = tmp_path / "coco"
    synth(root, 12, seed=2, progress=False)
    ann_path = root / "annotations" / "instances_train2014.json"
    data = json.loads(ann_path.read_text())
    widths = {img["id"]: img["width"] for img in data["images"]}
    moved = 0
    for ann in data["annotations"]:
        x, y, w, h = ann["bbox"]
        if not ann["iscrowd"] and w >= 20:
            ann["bbox"] = [widths[ann["image_id"]] - w / 2, y, w, h]  # half beyond the right edge
            moved += 1
    ann_path.write_text(json.dumps(data))
    out = tmp_path / "out"
    stats = run_build(root, out, ["num_train=4", "num_val=1", "allow_shortfall=true", "tiny_ratio=0.0"])
    assert 0 < stats["build"]["clamped_annotations"] <= moved
    for row in pq.read_table(out / "train.parquet").to_pylist():
        answer = json.loads(row["answer"])
        assert 0 <= answer["box"][0] < answer["box"][2] <= answer["width"]
    assert "Boxes clamped to the image" in (out / "stats.md").read_text()


def test_class6_the_launcher_reads_the_report_measure_prompts_writes(files):
    # the documented command wrote prompt_lengths.json while the launcher looked for prompt_lengths_<recipe>.json
    # and reported "not measured yet": one name, in locus_train.prompt_report
    from locus_train.preflight.commands import prompt_report_path
    from locus_train.prompt_report import report_path

    class Plan:
        data_dir = files["ds"]

    assert prompt_report_path(Plan()) == report_path(files["ds"]) == files["ds"] / "prompt_lengths.json"


@require_torch
def test_class6_and_7_measure_prompts_with_a_model(files, tiny_qwen2_5_vl, tmp_path):
    # with a real (tiny) processor: no format prompt is an error; a 20000x20000 row is named, not measured
    base = ["measure-prompts", "--model", str(tiny_qwen2_5_vl), "--quiet"]
    one_line_error(run(*base, str(files["ds"]), "--max-prompt-length", "4096"), "--recipe", "--format-prompt")
    bomb = _copy(files["bomb"], tmp_path / "bomb")
    before = digest(bomb)
    one_line_error(run(*base, str(bomb), "--recipe", RECIPE), "row 0 image 0", "400,000,000 px", "limit")
    assert digest(bomb) == before and not (bomb / "prompt_lengths.json").exists()
    # the control: the documented command writes the report the launcher reads
    done = run(*base, str(_copy(files["ds"], tmp_path / "ds")), "--recipe", RECIPE)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "ds" / "prompt_lengths.json").is_file()


@require_torch
def test_class4_measure_prompts_refuses_a_recipe_of_the_other_family(files, tiny_qwen2_5_vl, tmp_path):
    # a Qwen3-VL recipe with a Qwen2.5-VL checkpoint used to measure another template and grid, exit 0
    qwen3 = str(REPO / "config" / "locus_qwen3_vl_4b.yaml")
    data = _copy(files["ds"], tmp_path / "ds")
    base = ["measure-prompts", str(data), "--model", str(tiny_qwen2_5_vl), "--recipe", qwen3, "--quiet"]
    one_line_error(run(*base), "--recipe", "qwen3_vl", "--allow-frame-mismatch")
    assert not (data / "prompt_lengths.json").exists()
    # the override measures anyway, on purpose
    assert run(*base, "--allow-frame-mismatch").returncode in (0, 1)
    assert (data / "prompt_lengths.json").is_file()


# --- class 7: hostile images -------------------------------------------------------------------------------------


def test_class7_preview_names_the_oversized_row(files, tmp_path):
    # PIL's DecompressionBombError used to reach the user as a traceback
    done = run("preview", str(files["bomb"]), "--n", "12", "--out", str(tmp_path / "p.png"))
    one_line_error(done, "train.parquet row ", "400,000,000 px", "limit")
    assert not (tmp_path / "p.png").exists()


def test_class7_a_build_skips_and_counts_oversized_images_apart_from_corrupt_ones(tmp_path):
    # a bomb among the sources: skipped under its own reason (it is not a corrupt file), the build goes on
    root = tmp_path / "coco"
    synth(root, 20, seed=4, progress=False)
    data = json.loads((root / "annotations" / "instances_train2014.json").read_text())
    img = data["images"][0]
    (root / "train2014" / img["file_name"]).write_bytes(png_header(20000, 20000))
    img["width"] = img["height"] = 20000
    (root / "annotations" / "instances_train2014.json").write_text(json.dumps(data))
    (root / "train2014" / data["images"][1]["file_name"]).write_bytes(b"\xff\xd8\xff" + b"\0" * 64)  # garbage JPEG
    stats = run_build(root, tmp_path / "out", ["num_train=3000", "num_val=4", "allow_shortfall=true"])
    walk = stats["build"]["skipped_in_walk"]
    assert walk.get("image_too_large") == 1 and walk.get("corrupt_image") == 1


@pytest.mark.parametrize("env, expected", [("100", "over the 100 px limit"), ("ten", "not a positive integer")])
def test_class7_the_pixel_limit_is_configurable(files, tmp_path, env, expected):
    # LOCUS_MAX_IMAGE_PIXELS lowers the limit; a value that is not a count is named, not ignored
    done = subprocess.run(
        cli("preview", str(files["ds"]), "--n", "1", "--out", str(tmp_path / "p.png")),
        capture_output=True,
        text=True,
        env={**_env(), "LOCUS_MAX_IMAGE_PIXELS": env},
    )
    one_line_error(done, expected)


# --- a closed pipe ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("args", [["stats", "--json"], ["validate", "--quiet", "--decode", "0"]])
def test_a_closed_pipe_ends_quietly(files, args):
    # `locus-data stats DS | head -1`: the reader goes away; BrokenPipeError used to print a traceback
    process = subprocess.Popen(
        cli(*args, str(files["ds"])), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env()
    )
    process.stdout.close()  # the reader is gone before the command writes
    err = process.stderr.read().decode()
    process.wait(timeout=60)
    assert "Traceback" not in err and "BrokenPipe" not in err, err
