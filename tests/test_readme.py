"""The README a new user reads first: its links resolve, and what it tells them to run exists."""

import re

from .conftest import REPO_ROOT


README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")


def test_embedded_images_and_linked_files_exist():
    # the preview picture is shown in the README, so it must be in the tree
    targets = re.findall(r"\]\(((?:docs|benchmarks|config|examples)/[^)#\s]+)\)", README)
    assert "docs/demo_preview.jpg" in targets
    assert [t for t in targets if not (REPO_ROOT / t).exists()] == []


def test_after_the_two_commands_it_says_how_to_reach_the_installed_commands():
    # `locus-data` lives in .venv/bin: without this line a new user's shell says "command not found"
    setup = README.split("## What is here")[0]
    assert "source .venv/bin/activate" in setup and "make clean-demo" in setup


def test_make_targets_named_in_the_docs_exist():
    # constraints.txt used to name a `make venv` target the Makefile never had
    targets = set(re.findall(r"^([a-z][a-z0-9-]*):", (REPO_ROOT / "Makefile").read_text(), re.M))
    for text in (README, (REPO_ROOT / "constraints.txt").read_text()):
        named = set(re.findall(r"`make ([a-z][a-z0-9-]*)", text))
        assert named <= targets, named - targets


def test_measured_figures_carry_the_prompt_length_benchmark():
    figures = README.split("## Measured figures")[1]
    assert "`python benchmarks/bench_prompt_lengths.py`" in figures and (REPO_ROOT / "benchmarks").is_dir()
