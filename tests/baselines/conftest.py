"""Fixtures for the baseline pipeline tests."""

from pathlib import Path

import pytest

from .tiny_dataset import write_dataset


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """8 train + 4 val examples."""
    return write_dataset(tmp_path / "data", 8, 4)
