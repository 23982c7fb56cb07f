"""`make demo`, the README's first command, run twice in a row as a new user would."""

import shutil
import subprocess
import sys

import pytest

from .conftest import REPO


@pytest.mark.slow  # ~5 s: `make demo` twice in a subprocess
@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_demo_twice_succeeds_and_keeps_the_dataset(tmp_path):
    # the second run used to stop on "already holds a build"; it now keeps the build and checks it again.
    # -o: the venv stamp counts as up to date, so the test never installs into the shared .venv
    demo = tmp_path / "demo"
    # PY: the interpreter running this test, so the verdict does not depend on the checkout having a .venv
    make = ["make", "-s", "-C", str(REPO), "-o", ".venv/.core", "demo", f"DEMO={demo}", f"PY={sys.executable}"]
    first = subprocess.run(make, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    built = (demo / "locus_cue" / "train.parquet").read_bytes()
    second = subprocess.run(make, capture_output=True, text=True)
    assert second.returncode == 0, second.stderr
    assert "already built" in second.stdout and "make clean-demo" in second.stdout
    assert (demo / "locus_cue" / "train.parquet").read_bytes() == built
    assert (demo / "locus_cue" / "preview.png").is_file()
