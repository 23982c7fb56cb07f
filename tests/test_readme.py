"""The README and docs/ a new user reads: links resolve, and what they tell them to run exists and parses.

Every ``locus-*`` command in a fenced ``bash`` block of README.md or docs/*.md is read out (continuation lines
joined, comments dropped); each subcommand's ``--help`` runs, and every flag the docs give it must be in that help.
tests/train/test_reliability.py runs the documented CPU recipe line end to end.
"""

import contextlib
import importlib.metadata
import io
import re
import shlex

import pytest

from .conftest import REPO_ROOT


README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
DOCS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
PROGRAMS = ("locus-data", "locus-train", "locus-eval")


def documented_commands() -> list[tuple[str, list[str]]]:
    """``(doc file name, argv)`` of every ``locus-*`` command in the docs' fenced bash blocks."""
    found = []
    for doc in DOCS:
        for block in re.findall(r"```bash\n(.*?)```", doc.read_text(encoding="utf-8"), re.S):
            for line in re.sub(r"\\\n\s*", " ", block).splitlines():
                for part in re.split(r"&&|\|\||;|\|", re.sub(r"(^|\s)#.*", "", line)):
                    words = shlex.split(part.strip())
                    if words and words[0] in PROGRAMS:
                        found.append((doc.name, words))
    return found


COMMANDS = documented_commands()


def _subcommand(argv: list[str]) -> tuple[str, str]:
    return argv[0], argv[1] if len(argv) > 1 and not argv[1].startswith("-") else ""


def _help(program: str, subcommand: str) -> str:
    """``PROGRAM SUBCOMMAND --help`` run through the installed entry point, in this process (no interpreter start)."""
    (point,) = importlib.metadata.entry_points(group="console_scripts", name=program)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as stop:
        status = point.load()([subcommand, "--help"] if subcommand else ["--help"])
        raise SystemExit(status)
    assert stop.value.code in (0, None), f"{program} {subcommand} --help exited {stop.value.code}"
    return out.getvalue()


def test_the_docs_name_commands():
    # the reader below found the commands (a changed fence style would silently test nothing)
    assert len(COMMANDS) > 40 and {name for name, _ in COMMANDS} >= {"README.md", "evaluation.md", "trl.md"}


NOT_YET: dict[tuple[str, str], str] = {}
"""documented commands known to be missing (strict xfail: the test says so once they exist)"""


@pytest.mark.parametrize(
    "program,subcommand",
    [
        pytest.param(*pair, marks=pytest.mark.xfail(strict=True, reason=NOT_YET[pair])) if pair in NOT_YET else pair
        for pair in sorted({_subcommand(argv) for _, argv in COMMANDS})
    ],
)
def test_documented_flags_exist_in_the_commands_help(program, subcommand):
    # a flag the docs use but the command lacks is the first thing a newcomer's copy-paste hits
    help_text = _help(program, subcommand)
    options = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", help_text))
    missing = set()
    for doc, argv in COMMANDS:
        if _subcommand(argv) == (program, subcommand):
            used = {word.strip("[]").split("=")[0] for word in argv if word.strip("[").startswith("--")}
            missing |= {f"{doc}: {flag}" for flag in used if flag not in options}
    assert not missing, f"{program} {subcommand}: documented flags not in --help: {sorted(missing)}"


def test_documented_repo_paths_exist():
    # config/, examples/ and package paths the docs pass to a command must be in the tree (a renamed recipe or
    # prompt would fail only when a user runs the line)
    stale = set()
    for doc, argv in COMMANDS:
        for word in argv:
            path = word.split("=", 1)[-1]
            if re.match(r"(config|examples|locus_[a-z]+)/[\w./-]+$", path) and not (REPO_ROOT / path).exists():
                stale.add(f"{doc}: {path}")
    assert not stale, sorted(stale)


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
