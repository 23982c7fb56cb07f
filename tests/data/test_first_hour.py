"""What a new user hit in the first hour: each case ends in one line naming the problem, or in the right outcome."""

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from locus_data.cli import main
from locus_data.validate import validate

from .conftest import DEFAULT_YAML, REFERENCE_OVERRIDES, cli


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("locus-data: error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def broken_copies(reference: Path, root: Path) -> dict[str, Path]:
    """Datasets whose train.parquet is zero bytes, garbage, or a real file cut short (the footer lost)."""
    data = (reference / "train.parquet").read_bytes()
    out = {}
    for name, content in (("empty", b""), ("garbage", os.urandom(4096)), ("truncated", data[: len(data) // 2])):
        folder = root / name
        folder.mkdir()
        (folder / "train.parquet").write_bytes(content)
        shutil.copy(reference / "val.parquet", folder / "val.parquet")
        out[name] = folder
    return out


@pytest.mark.parametrize("command", ["stats", "preview"])
def test_stats_and_preview_of_an_unreadable_parquet_are_one_line_errors(reference, tmp_path, capsys, command):
    # pyarrow raises ArrowInvalid for each; the user sees which file and what to do (validate already did this)
    for name, folder in broken_copies(reference, tmp_path).items():
        assert main([command, str(folder)]) == 2, name
        err = one_line_error(capsys)
        assert f"{folder / 'train.parquet'} is not a readable Parquet file" in err and "rebuild" in err


def test_validate_refuses_a_dataset_with_no_rows(reference, tmp_path):
    # an empty train split used to pass as "OK: train 0 rows": EasyR1 would then train zero steps
    empty = tmp_path / "empty"
    empty.mkdir()
    for split in ("train", "val"):
        table = pq.read_table(reference / f"{split}.parquet")
        pq.write_table(table.slice(0, 0), empty / f"{split}.parquet")
    report = validate(empty, progress=False)
    assert not report.ok and "empty split" in report.summary() and "has no rows" in report.summary()


def test_resume_of_a_finished_build_with_other_settings_is_refused(coco, reference, capsys):
    # "nothing to resume" with exit 0 silently ignored the new values; the build it would keep is another one
    before = (reference / "train.parquet").stat().st_mtime_ns
    args = ["build", "--config", str(DEFAULT_YAML), "--coco-root", str(coco), "--out", str(reference), "--resume"]
    assert main([*args, "num_train=200", "num_val=40", "seed=4", "--quiet"]) == 2
    err = one_line_error(capsys)
    assert "holds a finished build made with other settings (seed: 3 -> 4)" in err
    assert (reference / "train.parquet").stat().st_mtime_ns == before


def test_out_inside_the_source_image_folder_is_refused(coco, capsys):
    # the build would write its files among the images it reads
    out = coco / "train2014" / "locus"
    assert main(["build", "--coco-root", str(coco), "--out", str(out), "--quiet", "num_train=10", "num_val=2"]) == 2
    assert "is inside the source image folder" in one_line_error(capsys) and not out.exists()


def test_negative_workers_are_refused(coco, tmp_path, capsys):
    # -1 used to be accepted (and behaved like 0)
    args = ["build", "--coco-root", str(coco), "--out", str(tmp_path / "out"), "--workers", "-1", "--quiet"]
    assert main(args) == 2
    assert "--workers must be >= 0" in one_line_error(capsys)


def test_an_image_folder_without_the_images_says_so(coco, tmp_path, capsys):
    # the right annotations with an empty train2014/: every image is a missing file, not a data-mix shortfall
    wrong = tmp_path / "coco"
    (wrong / "train2014").mkdir(parents=True)
    shutil.copytree(coco / "annotations", wrong / "annotations")
    args = ["build", "--coco-root", str(wrong), "--out", str(tmp_path / "out"), "--workers", "0", "--quiet"]
    assert main([*args, "num_train=20", "num_val=4"]) == 2
    err = one_line_error(capsys)
    assert "images the build tried are missing from" in err and "(missing_file: " in err
    assert "right image folder" in err and "not enough usable candidates" not in err


def test_killed_build_leaves_no_worker_traceback(coco, tmp_path):
    # after kill -9 of the build, its pool workers used to print a BrokenPipeError traceback onto the terminal
    out = tmp_path / "out"
    args = ["build", "--config", str(DEFAULT_YAML), "--coco-root", str(coco), "--out", str(out), "--quiet"]
    proc = subprocess.Popen(
        cli(*args, "--workers", "2", *REFERENCE_OVERRIDES, "chunk_images=1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 60
    while not _committed(out) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGKILL)
    # the workers share the stderr pipe: it reaches EOF once the last of them has exited
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the build finished before it could be killed"
    assert b"Traceback" not in err and b"BrokenPipeError" not in err, err.decode()


def _committed(out: Path) -> int:
    try:
        return len(json.loads((out / ".build" / "state.json").read_text())["chunks"])
    except (OSError, ValueError, KeyError):
        return 0
