"""``locus-data select-resolution``: the versions, the lfpc / hard / random picks, kill-and-resume, the outputs that
``validate`` and ``export-lfpc`` accept, and one-line errors -- on ``synth-vqa`` data, with a tiny Qwen2.5-VL through
the hf backend and with scripted answers from a local OpenAI-compatible server."""

import base64
import dataclasses
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from locus_data.cli import main as data_main
from locus_data.vqa import MANIFEST_NAME, read_manifest, write_manifest
from locus_train.select_resolution import (
    PROGRESS,
    STAGE1_MAX_PIXELS,
    STATE,
    ChunkImages,
    Grid,
    Question,
    load_grid,
    load_selection_backend,
    main,
    make_request,
    random_pick,
    versions,
)
from tests.agent.fake_openai import FakeServer, completion
from tests.testing_utils import require_torch


LOCUS_DATA = Path(sys.executable).with_name("locus-data")  # the installed command (the venv's bin/)
MAX_PIXELS = 64 * 28 * 28  # 64 visual tokens: versions of 64, 32, 16 and 8 tokens keep the tiny model fast
FAST = ["--max-pixels", str(MAX_PIXELS), "--max-new-tokens", "4", "--quiet"]
GRID = Grid("qwen2_5_vl", 28, 3136, MAX_PIXELS)  # a served model's grid (no local processor): Qwen2.5-VL's


def run_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [str(LOCUS_DATA), "select-resolution", *args], capture_output=True, text=True, timeout=timeout, env=env
    )


def manifest_rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / MANIFEST_NAME).read_text().splitlines()]


def progress_keys(out: Path) -> list[tuple[str, int]]:
    lines = (out / STATE / PROGRESS).read_text().splitlines()
    return [(row["id"], row["version"]) for row in map(json.loads, lines)]


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth_vqa") / "data"
    assert data_main(["synth-vqa", "--out", str(out), "--num-images", "3", "--seed", "0", "--quiet"]) == 0
    return out


def test_versions_halve_the_pixels_down_to_the_floor():
    # version 0 is the original as seen at --max-pixels; each next one has about half its predecessor's pixels,
    # sides on the 28-pixel grid, the aspect kept, and nothing below the floor of 1/16
    found = versions(3840, 2160, Grid("qwen2_5_vl", 28, 3136, STAGE1_MAX_PIXELS), 0.5, 1 / 16)
    assert [v.index for v in found] == [0, 1, 2, 3, 4]
    pixels = [v.width * v.height for v in found]
    assert pixels[0] <= STAGE1_MAX_PIXELS
    for k in range(1, 5):
        assert pixels[k] <= pixels[0] * 0.5**k  # at most the nominal share (sides are rounded down)
        assert pixels[k] >= pixels[0] * 0.5**k * 0.8
        assert found[k].width % 28 == found[k].height % 28 == 0
        # each side the exactly scaled side rounded down to the grid (the aspect kept up to that rounding)
        ratio = (pixels[0] * 0.5**k / (3840 * 2160)) ** 0.5
        assert 3840 * ratio - 28 < found[k].width <= 3840 * ratio
        assert 2160 * ratio - 28 < found[k].height <= 2160 * ratio
    # a coarser floor stops earlier; a floor below the processor's min_pixels stops at min_pixels
    assert len(versions(3840, 2160, GRID, 0.5, 1 / 4)) == 3
    assert min(v.width * v.height for v in versions(3840, 2160, GRID, 0.5, 1 / 1024)) >= 3136


def test_default_max_pixels_is_the_stage1_recipes(repo_root):
    # version 0 must be the view Stage I would show without selection: the recipe's data.max_pixels
    recipe = repo_root / "config" / "lfpc_stage1_qwen2_5_vl_7b.yaml"
    if not recipe.is_file():
        pytest.skip("the Stage I recipe is not in this checkout yet")
    from omegaconf import OmegaConf

    assert OmegaConf.load(recipe).data.max_pixels == STAGE1_MAX_PIXELS


def test_random_pick_is_uniform_and_order_free():
    # random's pick depends on the seed and the id only; over many ids every version is drawn about equally
    picks = [random_pick(0, f"q{i}", 4) for i in range(4000)]
    counts = [picks.count(k) for k in (1, 2, 3, 4)]
    assert min(counts) > 900 and max(counts) < 1100
    assert [random_pick(0, f"q{i}", 4) for i in reversed(range(4000))] == picks[::-1]


@require_torch
@pytest.mark.slow
def test_kill_and_resume_give_the_uninterrupted_result(synth, tiny_qwen2_5_vl, tmp_path):
    common = ["--data", str(synth), "--model", str(tiny_qwen2_5_vl), "--backend", "hf", "--batch-size", "1", *FAST]
    whole = tmp_path / "whole"
    done = run_cli(*common, "--out", str(whole))
    assert done.returncode == 0, done.stderr
    keys = progress_keys(whole)
    assert len(keys) == len(set(keys)) >= 6  # versions 0 and 1 of each of the 3 questions at least, none twice
    report = json.loads((whole / "selection.json").read_text())
    assert report["answers_recorded"] == report["asked_this_run"] == len(keys)

    # a real kill: SIGKILL as soon as the first answer is on disk, then the same command again
    killed = tmp_path / "killed"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    child = subprocess.Popen(
        [str(LOCUS_DATA), "select-resolution", *common, "--out", str(killed)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    log = killed / STATE / PROGRESS
    deadline = time.time() + 300
    while time.time() < deadline and child.poll() is None and not (log.is_file() and log.stat().st_size):
        time.sleep(0.005)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (killed / MANIFEST_NAME).exists()  # no final output from a killed run
    before = len(log.read_text().splitlines())
    assert 1 <= before < len(keys)
    resumed = run_cli(*common, "--out", str(killed))
    assert resumed.returncode == 0, resumed.stderr
    # the same rows (views, selections, every recorded answer), the same view pixels, nothing asked twice
    assert manifest_rows(killed) == manifest_rows(whole)
    for row in manifest_rows(whole):
        assert (killed / row["view_image"]).read_bytes() == (whole / row["view_image"]).read_bytes()
    assert sorted(progress_keys(killed)) == sorted(keys)
    assert json.loads((killed / "selection.json").read_text())["asked_this_run"] == len(keys) - before

    # a kill in the middle of a write leaves half a line: it is dropped, and that answer alone is asked again
    torn = tmp_path / "torn"
    (torn / STATE).mkdir(parents=True)
    (torn / STATE / "settings.json").write_bytes((whole / STATE / "settings.json").read_bytes())
    lines = (whole / STATE / PROGRESS).read_text().splitlines(keepends=True)
    (torn / STATE / PROGRESS).write_text("".join(lines[:2]) + lines[2][:25])
    again = run_cli(*common, "--out", str(torn))
    assert again.returncode == 0, again.stderr
    assert manifest_rows(torn) == manifest_rows(whole)
    assert sorted(progress_keys(torn)) == sorted(keys)
    assert json.loads((torn / "selection.json").read_text())["asked_this_run"] == len(keys) - 2

    # the output is a valid manifest that export-lfpc turns into EasyR1 rows showing the selected views
    assert subprocess.run([str(LOCUS_DATA), "validate", str(whole)], capture_output=True).returncode == 0
    export = tmp_path / "export"
    exported = subprocess.run(
        [str(LOCUS_DATA), "export-lfpc", str(whole), "--out", str(export), "--val", "1"], capture_output=True
    )
    assert exported.returncode == 0, exported.stderr
    assert json.loads((export / "export.json").read_text())["selected_views"] == {"train": 2, "val": 1}
    assert subprocess.run([str(LOCUS_DATA), "validate", str(export)], capture_output=True).returncode == 0


@require_torch
def test_hard_and_random_pick_among_the_versions_without_asking(synth, tiny_qwen2_5_vl, tmp_path):
    items = {it.id: it for it in read_manifest(synth)}
    grid = Grid("qwen2_5_vl", 28, 3136, MAX_PIXELS)  # the tiny checkpoint's processor floor is 56*56 = 3136 too
    common = ["--data", str(synth), "--model", str(tiny_qwen2_5_vl), *FAST]
    assert main([*common, "--strategy", "hard", "--out", str(tmp_path / "hard")]) == 0
    picks = {}
    for name, seed in [("r0", 0), ("r0_again", 0), ("r1", 1), ("r2", 2), ("r3", 3)]:
        assert main([*common, "--strategy", "random", "--seed", str(seed), "--out", str(tmp_path / name)]) == 0
        picks[name] = {row["id"]: row["selection"]["version"] for row in manifest_rows(tmp_path / name)}
    for row in manifest_rows(tmp_path / "hard"):
        found = versions(items[row["id"]].width, items[row["id"]].height, grid, 0.5, 1 / 16)
        # hard: the most downsampled version of every question, stored at its size; nothing was asked
        assert row["selection"]["version"] == found[-1].index and row["selection"]["answers"] is None
        with Image.open(tmp_path / "hard" / row["view_image"]) as view:
            assert view.size == (found[-1].width, found[-1].height) == tuple(row["selection"]["view_size"])
        # random: always one of the downsampled versions
        assert all(1 <= picks[name][row["id"]] <= found[-1].index for name in picks)
    assert not (tmp_path / "hard" / STATE / PROGRESS).exists()
    # the same seed picks the same versions; other seeds pick differently somewhere
    assert picks["r0"] == picks["r0_again"]
    assert any(picks[name] != picks["r0"] for name in ("r1", "r2", "r3"))
    report = json.loads((tmp_path / "hard" / "selection.json").read_text())
    assert report["histogram"] == {"0.125": 3} and report["asked_this_run"] == 0


@require_torch
def test_the_hf_processor_sees_every_version_at_its_stored_size(synth, tiny_qwen2_5_vl):
    # the stored view must be what the model answered on: the processor may not resize any version again
    grid, processor = load_grid(str(tiny_qwen2_5_vl), "hf", MAX_PIXELS)
    assert (grid.family, grid.factor, grid.floor_pixels) == ("qwen2_5_vl", 28, 56 * 56)
    backend = load_selection_backend("hf", str(tiny_qwen2_5_vl), None, grid)
    item = read_manifest(synth)[0]
    question = Question(item, versions(item.width, item.height, grid, 0.5, 1 / 16))
    images = ChunkImages()
    requests = [make_request(item, images.get(question, v), processor) for v in question.versions]
    grids = backend.inputs(requests)["image_grid_thw"].tolist()
    patch = 14  # the processor's grid is in 14-pixel patches
    assert grids == [[1, v.height // patch, v.width // patch] for v in question.versions]
    # the question as training asks it: the options and the letter instruction after the image
    assert requests[0].prompt.count("<|image_pad|>") == 1 and "A. " in requests[0].prompt


def scripted_manifest(synth: Path, tmp_path: Path) -> Path:
    """Three questions about synth-vqa images, each with its own question text (the fake server's script key)."""
    base = read_manifest(synth)
    items = [
        dataclasses.replace(base[0], id="diverges", question="Q-diverges: what fills the square?"),
        dataclasses.replace(base[1], id="never", question="Q-never: what fills the square?"),
        dataclasses.replace(base[2], id="short", question="Q-short: what fills the square?", choices=None),
    ]
    items[2] = dataclasses.replace(items[2], answer="horizontal lines")
    return write_manifest(tmp_path / "scripted" / MANIFEST_NAME, items)


SCRIPT = {
    # answer per version 0, 1, 2, 3: the option letter changes at version 2 (a different spelling at 1 is the same)
    "Q-diverges": ["B", "(B)", "The answer is C.", "C"],
    # the same option at every version, written four ways
    "Q-never": ["B", "B.", "Answer: (B)", "<answer>B</answer>"],
    # short answers compared as the reward normalizes them: "the Horizontal lines." is version 0's answer
    "Q-short": ["Horizontal lines", "the Horizontal lines.", "vertical lines", "nothing"],
}


class Script:
    """The fake server's reply: the scripted answer for the question text and the version the image size is."""

    def __init__(self, sizes: dict[str, dict[tuple[int, int], int]]):
        self.sizes = sizes
        self.asked: list[tuple[str, int]] = []

    def __call__(self, body: dict) -> tuple[int, dict]:
        parts = body["messages"][0]["content"]
        text = next(p["text"] for p in parts if p["type"] == "text")
        url = next(p["image_url"]["url"] for p in parts if p["type"] == "image_url")
        with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as image:
            size = image.size
        key = text.split(":", 1)[0]
        version = self.sizes[key][size]  # a KeyError (a 500 reply) if an image is no version of its question
        self.asked.append((key, version))
        return completion(SCRIPT[key][version])


@pytest.mark.parametrize("never", ["floor", "original", "drop"])
def test_lfpc_keeps_the_first_version_whose_answer_differs(synth, tmp_path, never):
    manifest = scripted_manifest(synth, tmp_path)
    items = read_manifest(manifest)
    sizes = {
        it.question.split(":", 1)[0]: {
            (v.width, v.height): v.index for v in versions(it.width, it.height, GRID, 0.5, 1 / 16)
        }
        for it in items
    }
    assert all(len(found) == 4 for found in sizes.values())  # versions 0..3 at 64 tokens (1/16 falls below 3136)
    script = Script(sizes)
    out = tmp_path / "out"
    with FakeServer(script) as server:
        argv = ["--data", str(manifest), "--model", "served", "--backend", "openai", "--base-url", server.url]
        assert main([*argv, "--never-diverged", never, "--batch-size", "2", "--out", str(out), *FAST]) == 0
    rows = {row["id"]: row for row in manifest_rows(out)}
    # "diverges": versions 0, 1, 2 asked, 2 kept; version 3 never asked once the answer changed
    assert rows["diverges"]["selection"]["version"] == 2
    assert rows["diverges"]["selection"]["rule"] == "first divergence"
    assert [a["key"] for a in rows["diverges"]["selection"]["answers"]] == ["B", "B", "C"]
    assert ("Q-diverges", 3) not in script.asked
    # "short": normalized like the reward ("the Horizontal lines." = "Horizontal lines"), so version 2 is kept
    assert rows["short"]["selection"]["version"] == 2
    assert [a["key"] for a in rows["short"]["selection"]["answers"]] == ["horizontal lines"] * 2 + ["vertical lines"]
    # no (question, version) asked twice; every version of "never" asked
    assert len(script.asked) == len(set(script.asked)) == 3 + 3 + 4
    # "never": the rule of --never-diverged
    report = json.loads((out / "selection.json").read_text())
    assert report["never_diverged_count"] == (0 if never == "drop" else 1)
    if never == "floor":
        assert rows["never"]["selection"]["version"] == 3 and rows["never"]["view_image"] == "views/never.png"
        assert report["histogram"] == {"0.25": 2, "0.125": 1}
    elif never == "original":
        assert rows["never"]["selection"]["version"] is None and "view_image" not in rows["never"]
        assert rows["never"]["selection"]["rule"] == "never diverged: original"
    else:
        assert "never" not in rows and report["dropped"] == 1
    # every row keeps the original for crops; the stored view is the version's size exactly
    for row in rows.values():
        assert Path(row["image"]).is_absolute() and Path(row["image"]).is_file()
        if "view_image" in row:
            with Image.open(out / row["view_image"]) as view:
                assert list(view.size) == row["selection"]["view_size"]
    assert data_main(["validate", str(out)]) == 0


def bad_manifest(tmp_path: Path, synth: Path) -> Path:
    row = manifest_rows(synth)[0]
    row["image"] = str(synth / row["image"])
    del row["answer"]
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(row) + "\n")
    return path


def big_view_manifest(tmp_path: Path, synth: Path) -> Path:
    """A row whose view image is larger than its original (a view is the original downsampled)."""
    row = manifest_rows(synth)[0]
    row["image"] = str(synth / row["image"])
    with Image.open(row["image"]) as original:
        size = (original.width + 100, original.height + 100)
    Image.new("RGB", size).save(tmp_path / "big.png")
    row["view_image"] = str(tmp_path / "big.png")
    path = tmp_path / "sub" / "big_view.jsonl"
    path.parent.mkdir()
    path.write_text(json.dumps(row) + "\n")
    return path


@pytest.mark.parametrize(
    "case, args, expected",
    [
        ("missing manifest", ["--data", "{tmp}/nope.jsonl", "--model", "m"], "does not exist"),
        ("invalid manifest", ["--data", "{bad}", "--model", "m"], "answer: missing"),
        ("view larger than original", ["--data", "{big}", "--model", "m"], "a view image larger than the original"),
        ("--out contains the input", ["--data", "{big}", "--model", "m", "--out", "{tmp}"], "holds the input"),
        ("missing --model", ["--data", "{synth}"], "--model is required"),
        ("--out is a file", ["--data", "{synth}", "--model", "m", "--out", "{tmp}/file"], "is a file"),
        ("--out holds the input", ["--data", "{synth}", "--model", "m", "--out", "{synth}"], "input manifest"),
        ("step out of (0, 1)", ["--data", "{synth}", "--model", "m", "--scale-step", "1.5"], "--scale-step"),
        ("negative seed", ["--data", "{synth}", "--model", "m", "--seed", "-1"], "--seed must be >= 0"),
        ("batch size 0", ["--data", "{synth}", "--model", "m", "--batch-size", "0"], "--batch-size must be >= 1"),
        (
            "other settings",
            ["--data", "{synth}", "--model", "m", "--strategy", "hard", "--out", "{tmp}/prev"],
            "--scale-step 0.25",
        ),
        ("foreign folder", ["--data", "{synth}", "--model", "m", "--out", "{tmp}/foreign"], "not empty"),
    ],
)
def test_bad_input_is_one_line_exit_2(synth, tmp_path, capsys, case, args, expected):
    (tmp_path / "file").write_text("x")
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("mine")
    # an earlier run with --scale-step 0.25 (hard: no model needed); this run asks for the default 0.5
    prev = ["--data", str(synth), "--model", "m", "--strategy", "hard", "--scale-step", "0.25", "--backend", "openai"]
    if case == "other settings":
        assert main([*prev, "--out", str(tmp_path / "prev"), "--quiet"]) == 0
    values = {
        "tmp": tmp_path,
        "synth": synth,
        "bad": bad_manifest(tmp_path, synth) if "{bad}" in args else "",
        "big": big_view_manifest(tmp_path, synth) if "{big}" in args else "",
    }
    argv = [a.format(**values) for a in args]
    if "--out" not in argv:
        argv += ["--out", str(tmp_path / "out")]
    capsys.readouterr()
    assert main([*argv, "--backend", "openai", "--quiet"]) == 2
    stderr = capsys.readouterr().err
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert expected in stderr and re.match(r"locus-data select-resolution: error: ", stderr)


def test_the_installed_command_errors_in_one_line(synth, tmp_path):
    # the installed command's process: exit status 2 and one line on stderr, no traceback
    result = run_cli("--data", str(synth), "--out", str(tmp_path / "out"), "--batch-size", "0", timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == "locus-data select-resolution: error: --batch-size must be >= 1, got 0"
