"""Helpers for the training-side tests: the shipped recipes and a tiny dataset of the `locus-data` contract."""

import io
import json
from pathlib import Path

import pytest


REPO_ROOT = Path(__file__).resolve().parents[2]

RECIPES = sorted((REPO_ROOT / "config").glob("locus_*.yaml"))
LFPC_RECIPES = sorted((REPO_ROOT / "config").glob("lfpc_stage*.yaml"))
LFPC_ABLATIONS = sorted((REPO_ROOT / "config" / "ablations").glob("lfpc_*.yaml"))
"""the LFPC launcher's overlays (examples/lfpc_qwen2_5_vl_7b.sh); the other overlays are the LOCUS recipes'"""
ABLATIONS = sorted(set((REPO_ROOT / "config" / "ablations").glob("*.yaml")) - set(LFPC_ABLATIONS))


def jpeg(size: tuple[int, int], color: str) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="JPEG")
    return buffer.getvalue()


def write_tiny_dataset(out: Path, problem: str, sizes: list[tuple[int, int]], rows: int = 3) -> Path:
    """OUT/train.parquet and OUT/val.parquet with the columns `locus-data build` writes (problem, images, answer)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out.mkdir(parents=True, exist_ok=True)
    width, height = sizes[0]
    table = pa.table(
        {
            "problem": [problem] * rows,
            "images": [
                [
                    {"bytes": jpeg(size, color), "path": f"{i}_{k}.jpg"}
                    for k, (size, color) in enumerate(zip(sizes, ("red", "green")))
                ]
                for i in range(rows)
            ],
            "answer": [json.dumps({"box": [10.0, 12.0, 42.0, 44.0], "width": width, "height": height})] * rows,
        }
    )
    for split in ("train", "val"):
        pq.write_table(table, out / f"{split}.parquet")
    return out


@pytest.fixture
def tiny_dataset(tmp_path):
    from locus_data.problems import CUE_SEARCH_PROBLEM

    # a COCO-sized full image and a tiny 40x32 cue (above the 32-px side the data builder guarantees)
    return write_tiny_dataset(tmp_path / "data", CUE_SEARCH_PROBLEM, [(640, 480), (40, 32)])


# Python imports the first sitecustomize it finds at startup: put on PYTHONPATH, this one hides EasyR1 from a process
HIDE_EASYR1 = """
import importlib.abc
import importlib.metadata
import sys

_distribution = importlib.metadata.distribution


def _without_verl(name):
    if name == "verl":
        raise importlib.metadata.PackageNotFoundError(name)
    return _distribution(name)


class _HideVerl(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "verl" or name.startswith("verl."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


importlib.metadata.distribution = _without_verl
sys.meta_path.insert(0, _HideVerl())
"""


@pytest.fixture
def without_easyr1(monkeypatch, tmp_path_factory):
    """Preflight as on a machine without EasyR1 (CI installs it, so there its absence is simulated).

    In this process the preflight's EasyR1 check sees no ``verl``; the returned PYTHONPATH entry hides it from a
    subprocess too (a launcher's ``python3 -m locus_train.preflight``).
    """
    import importlib.metadata

    import locus_train.preflight

    def missing(name: str):
        raise importlib.metadata.PackageNotFoundError(name)

    check = locus_train.preflight.check_easyr1
    monkeypatch.setattr(locus_train.preflight, "check_easyr1", lambda: check(missing))
    shim = tmp_path_factory.mktemp("without_easyr1")
    (shim / "sitecustomize.py").write_text(HIDE_EASYR1)
    return str(shim)
