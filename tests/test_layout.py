"""The layout shows the pipeline: imports flow reward -> data -> agent -> train -> baselines / eval, never back up.

Read from the source with ``ast`` (function-level imports included, since a lazy import is still a dependency), so a
refactor that sends an arrow back up, closes a cycle or reaches into ``tests/`` fails here, not in a user's install.
"""

import ast
import importlib.metadata
from pathlib import Path

import pytest

from locus_data.cli import plugin_commands


REPO_ROOT = Path(__file__).resolve().parents[1]
# what each package may import of ours; baselines and eval sit side by side and never import each other
ALLOWED = {
    "locus_reward": set(),
    "locus_data": {"locus_reward"},
    "locus_agent": {"locus_reward", "locus_data"},
    "locus_train": {"locus_reward", "locus_data", "locus_agent"},
    "locus_baselines": {"locus_reward", "locus_data", "locus_agent", "locus_train"},
    "locus_eval": {"locus_reward", "locus_data", "locus_agent", "locus_train"},
}


def _modules() -> dict[str, Path]:
    """``{dotted module name: file}`` for every module of the six packages."""
    modules = {}
    for package in ALLOWED:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            parts = path.relative_to(REPO_ROOT).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


MODULES = _modules()


def _imports(path: Path) -> set[str]:
    """Every ``locus_*`` module a file imports, anywhere in it (resolved to a known module where possible)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in names if name.split(".")[0] in ALLOWED and name in MODULES}


GRAPH = {module: _imports(path) - {module} for module, path in MODULES.items()}


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_flow_one_way(package):
    # an import of a package further down the pipeline would make that package part of this one's install
    wrong = {
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        if module.split(".")[0] == package
        for target in targets
        if target.split(".")[0] not in ALLOWED[package] | {package}
    }
    assert not wrong


def test_no_import_cycles():
    # a cycle hides the order in which a reader should learn the code, and breaks lazy imports in odd ways
    state: dict[str, str] = {}
    cycles = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(GRAPH[module]):
            if state.get(target) == "open":
                cycles.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[module] = "done"

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])
    assert not cycles


def test_production_code_never_reads_the_test_tree():
    # an installed package has no tests/ folder: code that reads one works only in a checkout
    offenders = [str(path) for path in MODULES.values() if "tests/" in path.read_text(encoding="utf-8")]
    assert not offenders


def test_no_test_edits_sys_path():
    # tests import the installed packages exactly as users do
    offenders = [
        str(path)
        for path in (REPO_ROOT / "tests").rglob("*.py")
        if path.name != "test_layout.py" and "sys.path" in path.read_text(encoding="utf-8")
    ]
    assert not offenders


def test_locus_data_commands_from_other_packages_are_registered():
    # locus-data measure-prompts / annotate / export-* live above locus_data and reach it as entry points
    commands = plugin_commands()
    assert {"measure-prompts", "annotate", "export-sft", "export-text-cue"} <= set(commands)
    for entry in commands.values():
        assert callable(entry.load())
    assert importlib.metadata.version("locus")
