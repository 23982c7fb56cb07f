"""Every command has --help; stats and preview work on a build; a built-in command spares its exit the final garbage
collections; cue-size rules hold for any crop."""

import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from locus_data.cli import main
from locus_data.crops import cue_problem, cue_size

from .conftest import cli


@pytest.mark.parametrize("command", [[], ["build"], ["validate"], ["stats"], ["preview"], ["synth"]])
def test_every_command_has_help(command):
    done = subprocess.run(cli(*command, "--help"), capture_output=True, text=True)
    assert done.returncode == 0 and "usage: locus-data" in done.stdout


def test_stats_prints_the_table(reference, capsys):
    assert main(["stats", str(reference)]) == 0
    text = capsys.readouterr().out
    assert "| train | 200 | " in text and "140 (70.0%)" in text and "below_min_size" in text


def test_preview_writes_a_png_grid_next_to_the_dataset(reference, capsys):
    assert main(["preview", str(reference), "--n", "3"]) == 0
    image = Image.open(reference / "preview.png")
    assert image.format == "PNG" and image.width > 2 * image.height / 2  # two tiles per grid row


def test_preview_of_a_missing_dataset_is_a_one_line_error(tmp_path, capsys):
    assert main(["preview", str(tmp_path)]) == 2
    assert "train.parquet does not exist" in capsys.readouterr().err


# run in a fresh interpreter; its last atexit handler (registered first, so run last) reports the frozen objects
EXIT_PROBE = """
import atexit, gc, sys
atexit.register(lambda: print("frozen at exit:", gc.get_freeze_count()))
from locus_data.cli import main
if sys.argv[1:]:
    main(sys.argv[1:])
"""


@pytest.mark.parametrize("run_command", [True, False])
def test_a_built_in_command_spares_the_exit_its_final_collections(reference, run_command):
    # the heap is frozen when the interpreter starts its exit, so its full collections skip it (~0.07 s of a
    # build); the control (the module imported, no command run) shows the probe would see an unfrozen heap
    argv = ["stats", str(reference)] if run_command else []
    done = subprocess.run([sys.executable, "-c", EXIT_PROBE, *argv], capture_output=True, text=True, check=True)
    frozen = int(done.stdout.rsplit("frozen at exit:", 1)[1])
    assert (frozen > 1000) if run_command else (frozen == 0)


@given(
    crop_w=st.integers(16, 2000),
    crop_h=st.integers(16, 2000),
    scale=st.floats(0.8, 2.0),
)
def test_any_cue_from_a_16px_crop_and_the_paper_scales_is_safe_for_qwen(crop_w, crop_h, scale):
    width, height, upsampled = cue_size(crop_w, crop_h, scale, 32)
    if max(crop_w, crop_h) / min(crop_w, crop_h) <= 100:
        assert cue_problem(width, height, 200.0, 32) is None
    assert min(width, height) >= 32
    assert upsampled == (min(round(crop_w * scale), round(crop_h * scale)) < 32)
    # upsampling keeps the aspect ratio to within rounding
    assert abs(width / height - crop_w / crop_h) <= 0.5 * max(crop_w / crop_h, 1) * (1 / min(width, height) + 0.05)
