"""Skip markers, so one suite serves CPU CI and GPU machines (``from tests.testing_utils import require_gpu``)."""

import importlib.util

import pytest


def _has_cuda() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return torch.cuda.is_available()


require_gpu = pytest.mark.skipif(not _has_cuda(), reason="needs a CUDA device")
require_vllm = pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="needs vllm")
require_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch")
require_lmms_eval = pytest.mark.skipif(
    importlib.util.find_spec("lmms_eval") is None, reason="needs the lmms-eval extra (pip install -e '.[lmms-eval]')"
)
# EasyR1 (package `verl`) is not on the package registry: .ci/run installs the vendored archive, elsewhere
# `make test-easyr1 EASYR1_SRC=<archive or git URL>` does (README, Development)
_HAS_EASYR1 = importlib.util.find_spec("verl") is not None
require_easyr1 = pytest.mark.skipif(not _HAS_EASYR1, reason="needs EasyR1: make test-easyr1 EASYR1_SRC=...")
require_no_easyr1 = pytest.mark.skipif(_HAS_EASYR1, reason="checks the behaviour without EasyR1 installed")


def installed_command(name: str) -> list[str]:
    """argv prefix of the console script ``name`` as installed for the interpreter running the tests.

    The script beside ``sys.executable`` (a venv's bin/, which need not be on PATH) when it is there; else its
    entry point run by this interpreter (pip --user, conda, a packager's layout keep scripts elsewhere); else skip,
    so every environment that has the project installed gives the same verdict.
    """
    import importlib.metadata
    import sys
    from pathlib import Path

    script = Path(sys.executable).with_name(name)
    if script.is_file():
        return [str(script)]
    points = importlib.metadata.entry_points(group="console_scripts", name=name)
    if not points:
        pytest.skip(f"the {name} console script is not installed for {sys.executable}")
    point = next(iter(points))
    module, _, attr = point.value.partition(":")
    code = f"import sys; from {module} import {attr}; sys.argv[0] = {name!r}; sys.exit({attr}())"
    return [sys.executable, "-c", code]
