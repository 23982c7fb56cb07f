"""``locus-data build`` forks its workers: nothing it imports before the pool starts may start a thread.

numpy and pyarrow start native threads when imported; once they are loaded :class:`locus_data.worker.WorkerPool`
spawns its workers instead, and each then starts an interpreter and imports the build's modules again (a small
build took a third longer). Nor does the build load, before its first images are sent, what it does not need by
then: the plugin commands' entry-point scan (``importlib.metadata``) and tqdm (which loads it too), ~40 ms of a
small build's start. The check runs in a fresh interpreter, as the command does.
"""

import json
import subprocess
import sys

import pytest


PROBE = r"""
import json, os, sys
from locus_data.cli import builtin_parser
builtin_parser()[0].parse_args(["build", "--config", "c.yaml", "--coco-root", "coco", "--out", "out"])  # as main does
from locus_data.build import build  # what `locus-data build` imports before it starts the pool
from locus_data.worker import pool_start_method
heavy = sorted(m for m in ("numpy", "pyarrow", "pandas", "torch") if m in sys.modules)
late = sorted(m for m in ("importlib.metadata", "tqdm") if m in sys.modules)
threads = len(os.listdir("/proc/self/task"))
print(json.dumps({"method": pool_start_method(), "threads": threads, "heavy": heavy, "late": late}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_build_modules_leave_the_pool_forkable():
    # a module-level import of the row columns (locus_data.schema loads numpy and pyarrow) once made the pool spawn
    probe = subprocess.run([sys.executable, "-c", PROBE], check=True, capture_output=True, text=True)
    assert json.loads(probe.stdout) == {"method": "fork", "threads": 1, "heavy": [], "late": []}
