"""Fixtures for the TRL trainer tests: the `make demo` dataset (real synth + build) and one-thread torch."""

from pathlib import Path

import pytest

from locus_data.build import Sources, build
from locus_data.config import load_config as load_data_config
from locus_data.synth import synth


REPO_ROOT = Path(__file__).resolve().parents[3]
DEMO_CONFIG = REPO_ROOT / "config" / "trl" / "locus_tiny_cpu_demo.yaml"
TRL_RECIPES = sorted((REPO_ROOT / "config" / "trl").glob("*.yaml"))


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    # the tiny models' ops are too small to gain from a second thread, and spinning OpenMP threads on shared cores
    # made a step ~10x slower here (measured): one thread keeps the CI time predictable
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory) -> Path:
    """The dataset `make demo` builds: 60 synthetic COCO-format scenes -> 200 train / 40 val cue-search rows."""
    root = tmp_path_factory.mktemp("demo")
    synth(root / "coco", 60, seed=0, progress=False)
    cfg = load_data_config(REPO_ROOT / "config" / "data" / "locus_default.yaml", ["num_train=200", "num_val=40"])
    build(cfg, Sources.from_args(str(root / "coco"), None, None), root / "locus_cue", workers=0, progress=False)
    return root / "locus_cue"


def demo_overrides(checkpoint: Path, data_dir: Path, out: Path, *extra: str) -> list[str]:
    """key=value overrides that point the CPU demo recipe at test files."""
    return [
        f"model.path={checkpoint}",
        f"data.dir={data_dir}",
        f"data.cache_dir={out / 'datasets_cache'}",
        f"grpo.output_dir={out / 'run'}",
        "grpo.disable_tqdm=true",
        *extra,
    ]
