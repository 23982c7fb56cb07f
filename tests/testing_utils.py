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
require_lmms_eval = pytest.mark.skipif(
    importlib.util.find_spec("lmms_eval") is None, reason="needs the lmms-eval extra (pip install -e '.[lmms-eval]')"
)
# EasyR1 (package `verl`) is not on the package registry: .ci/run installs the vendored archive, elsewhere
# `make test-easyr1 EASYR1_SRC=<archive or git URL>` does (README, Development)
_HAS_EASYR1 = importlib.util.find_spec("verl") is not None
require_easyr1 = pytest.mark.skipif(not _HAS_EASYR1, reason="needs EasyR1: make test-easyr1 EASYR1_SRC=...")
require_no_easyr1 = pytest.mark.skipif(_HAS_EASYR1, reason="checks the behaviour without EasyR1 installed")
