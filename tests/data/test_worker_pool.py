"""The build's pool wakes its worker-handler thread when a worker exits or the pool changes state, never per result.

The stock :class:`multiprocessing.pool.Pool` also wakes that thread whenever the result pipe is readable, and the pipe
stays readable until the result-handler thread has read the whole message: with results of cue bytes the handler
spins through every read (~0.1 s of the build process's CPU on a small build, taken from the workers). Each case
counts the handler's passes (``_maintain_pool`` runs once per wake-up) while real worker processes send results.
"""

import multiprocessing
import multiprocessing.pool

import pytest

from locus_data.worker import _Pool, pool_start_method


def _payload(size: int) -> bytes:
    return b"x" * size


def _handler_passes(pool_class: type, monkeypatch: pytest.MonkeyPatch, results: int = 24, size: int = 1 << 20) -> int:
    passes = 0
    maintain = multiprocessing.pool.Pool._maintain_pool

    def counting(*args: object) -> None:
        nonlocal passes
        passes += 1
        maintain(*args)

    monkeypatch.setattr(multiprocessing.pool.Pool, "_maintain_pool", staticmethod(counting))
    pool = pool_class(2, context=multiprocessing.get_context(pool_start_method()))
    try:
        pending = [pool.apply_async(_payload, (size,)) for _ in range(results)]
        assert all(len(p.get(timeout=60)) == size for p in pending)
        return passes
    finally:
        pool.terminate()
        pool.join()


def test_worker_handler_does_not_wake_per_result(monkeypatch):
    # 24 results of 1 MiB: ours passes once at the start (and perhaps once more as the pool's cache empties)
    assert _handler_passes(_Pool, monkeypatch) <= 3


def test_the_stock_pool_does_wake_per_result(monkeypatch):
    # the control: the stock pool's handler passes at least once per result read, so the case above can fail
    assert _handler_passes(multiprocessing.pool.Pool, monkeypatch) >= 24
