"""One home per rule: the rules that must not drift are defined once, and every other module imports them.

* row columns: only ``locus_data/schema.py`` spells the parquet column names;
* reward options and pixel limits: only ``locus_reward/options.py`` declares them (with their defaults), and only
  ``locus_reward/frames.py`` holds EasyR1's pixel-limit numbers;
* splits: only ``locus_data/config.py`` names ``train``/``val`` and their files ``<split>.parquet``.

Read from the source with ``ast``, like tests/test_layout.py: a second definition (a list of column names, a
dataclass field named like a reward option, a ``"train.parquet"``) fails here with its file and line. The few
deliberate exceptions are listed below, each with its reason; the last test shows that the scan does catch each kind.
"""

import ast
import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from locus_data.config import SPLITS
from locus_data.schema import EASYR1_COLUMNS, schema
from locus_reward import frames, options


REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("locus_reward", "locus_data", "locus_train", "locus_baselines", "locus_eval")

COLUMNS = frozenset(schema("bytes").names)
"""every column of train/val.parquet"""


def _option_classes(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _option_classes(sub)


OPTIONS = frozenset(f.name for cls in _option_classes(options.Options) for f in dataclasses.fields(cls))
"""every reward option and pixel limit (the fields of the option classes, LFPC's included once they land)"""
PIXEL_NUMBERS = frozenset({frames.EASYR1_MIN_PIXELS, frames.EASYR1_MAX_PIXELS})
SPLIT_NAMES = frozenset(SPLITS)

HOMES = {
    "columns": "locus_data/schema.py",
    "options": "locus_reward/options.py",
    "pixel numbers": "locus_reward/frames.py",
    "splits": "locus_data/config.py",
}
EXCEPTIONS = {
    # the dataset writer; its split into smaller modules (issue 21, item 6) moves these onto the schema's and the
    # config's names: drop this line then
    # TRL's own keys: data.min_pixels/max_pixels are the processor limits a TRL run asks for (null: the checkpoint's);
    # they reach the reward as PixelLimits.processor_only(*pixel_limits(processor)) in locus_train.trl.rewards
    ("options", "locus_train/trl/config.py:DataConfig.min_pixels"): "TRL recipe key data.min_pixels",
    ("options", "locus_train/trl/config.py:DataConfig.max_pixels"): "TRL recipe key data.max_pixels",
    # lmms-eval's model argument, not ours (its default is PixelLimits().max_pixels)
    ("options", "locus_eval/lmms.py:LmmsEvalConfig.max_pixels"): "lmms-eval's --model_args max_pixels",
    # facts about each released backbone: its frame and its processor's own limits (what None means in PixelLimits)
    ("options", "locus_reward/frames.py:Backbone.coord_frame"): "the frame a backbone writes",
    ("options", "locus_reward/frames.py:Backbone.processor_min_pixels"): "the released processor's lower limit",
    ("options", "locus_reward/frames.py:Backbone.processor_max_pixels"): "the released processor's upper limit",
    # the public VQA sets' own field names (PixelReasoner, Chain-of-Focus, ThinkLite-VL, VisualProbe), not our columns
    ("columns", "locus_data/vqa_sources.py"): "other datasets' field names, read by the converters",
    # the agent's frame flag: None reads the family off the checkpoint's config.json (locus_agent.processor), and the
    # value is checked by locus_agent.view like every frame
    (
        "options",
        "locus_eval/agent.py:AgentConfig.coord_frame",
    ): "locus-eval agent --coord-frame",
    # values read back from a loaded processor, never None
    ("options", "locus_train/prompt_lengths.py:ImageGeometry.min_pixels"): "the loaded processor's lower limit",
    ("options", "locus_train/prompt_lengths.py:ImageGeometry.max_pixels"): "the loaded processor's upper limit",
    # what a prompt-length report was measured with, under the JSON keys the preflight and users read
    ("options", "locus_train/prompt_report.py:PromptLengthReport.min_pixels"): "a measured setting, recorded",
    ("options", "locus_train/prompt_report.py:PromptLengthReport.max_pixels"): "a measured setting, recorded",
}
"""(rule, file or file:Class.field) -> why it may define the thing itself"""


def _strings(node: ast.AST) -> list[str]:
    return [e.value for e in getattr(node, "elts", []) if isinstance(e, ast.Constant) and isinstance(e.value, str)]


def _named_constants(tree: ast.Module) -> Iterator[tuple[str, ast.AST]]:
    """``(name, value)`` of every assignment to a name at module or class level."""
    bodies = [tree.body] + [node.body for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]
    for body in bodies:
        for node in body:
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        yield target.id, node.value
                    elif isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):  # A, B = "a", "b"
                        for name, value in zip(target.elts, node.value.elts):
                            if isinstance(name, ast.Name):
                                yield name.id, value
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
                yield node.target.id, node.value


def _schema_names(tree: ast.Module) -> set[str]:
    """The names a module imports from locus_data.schema (its column constants among them)."""
    return {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "locus_data.schema"
        for alias in node.names
    }


def column_findings(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """Column names spelled out: in a list of columns, a ``columns=`` argument, a row dict, or as a constant."""
    constants = _schema_names(tree)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            named = [s for s in _strings(node) if s in COLUMNS]
            beside = any(isinstance(e, ast.Name) and e.id in constants for e in node.elts)
            if len(named) >= 2 or (named and beside):
                yield node.lineno, f"a list of columns spells {named}"
        elif isinstance(node, ast.keyword) and node.arg == "columns":
            named = [s for s in _strings(node.value) if s in COLUMNS]
            if named:
                yield node.value.lineno, f"columns= spells {named}"
        elif isinstance(node, ast.Dict):
            # a row built by hand: EasyR1's columns with others (COCO's own annotation dicts share some names)
            keys = [k.value for k in node.keys if isinstance(k, ast.Constant) and k.value in COLUMNS]
            if len(keys) >= 2 and set(keys) & set(EASYR1_COLUMNS):
                yield node.lineno, f"a row dict spells {keys}"
    for name, value in _named_constants(tree):
        if isinstance(value, ast.Constant) and value.value in COLUMNS:
            yield value.lineno, f"{name} = {value.value!r} restates a column name"


def option_findings(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """Reward options declared again: a class field, a named list of option names, a literal default of one."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name) and item.target.id in OPTIONS:
                    yield item.lineno, f"{node.name}.{item.target.id}"
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            positional = args.posonlyargs + args.args
            pairs = list(zip(positional[len(positional) - len(args.defaults) :], args.defaults))
            pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None]
            for arg, default in pairs:
                literal = isinstance(default, ast.Constant) and default.value is not None
                if arg.arg in OPTIONS and literal:
                    yield default.lineno, f"{node.name}({arg.arg}={default.value!r}) restates an option default"
    for name, value in _named_constants(tree):
        listed = [s for s in _strings(value) if s in OPTIONS]  # a tuple, list or set of option names
        if len(listed) >= 2:
            yield value.lineno, f"{name} lists option names {listed}"


def pixel_number_findings(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """EasyR1's default pixel limits written as numbers."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and type(node.value) is int and node.value in PIXEL_NUMBERS:
            yield node.lineno, f"{node.value} is one of EasyR1's pixel limits"


def split_findings(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """The split names or their file names spelled out."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)) and SPLIT_NAMES <= set(_strings(node)):
            yield node.lineno, "a list of the splits"
        elif isinstance(node, ast.Constant) and node.value in {f"{split}.parquet" for split in SPLITS}:
            yield node.lineno, f"the split file {node.value!r}"
        elif isinstance(node, ast.JoinedStr) and len(node.values) == 2:
            tail = node.values[1]
            if isinstance(node.values[0], ast.FormattedValue) and getattr(tail, "value", None) == ".parquet":
                yield node.lineno, "the split file rule f'{split}.parquet'"
        elif isinstance(node, ast.Compare):
            for operand in (node.left, *node.comparators):
                if isinstance(operand, ast.Constant) and operand.value in SPLIT_NAMES:
                    yield node.lineno, f"a comparison with the split {operand.value!r}"
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for default in node.args.defaults + [d for d in node.args.kw_defaults if d is not None]:
                if isinstance(default, ast.Constant) and default.value in SPLIT_NAMES:
                    yield default.lineno, f"{node.name}() defaults to the split {default.value!r}"


RULES: dict[str, Callable[[ast.Module], Iterator[tuple[int, str]]]] = {
    "columns": column_findings,
    "options": option_findings,
    "pixel numbers": pixel_number_findings,
    "splits": split_findings,
}


def _sources() -> dict[str, ast.Module]:
    return {
        path.relative_to(REPO_ROOT).as_posix(): ast.parse(path.read_text(encoding="utf-8"))
        for package in PACKAGES
        for path in sorted((REPO_ROOT / package).rglob("*.py"))
    }


SOURCES = _sources()


def _excepted(rule: str, file: str, what: str) -> bool:
    field = what.split(" ", 1)[0]
    return (rule, file) in EXCEPTIONS or (rule, f"{file}:{field}") in EXCEPTIONS


@pytest.mark.parametrize("rule", sorted(RULES))
def test_each_rule_has_one_home(rule):
    # a second definition drifts from the first the day one of them changes
    found = [
        f"{file}:{line}: {what}"
        for file, tree in SOURCES.items()
        if file != HOMES[rule]
        for line, what in RULES[rule](tree)
        if not _excepted(rule, file, what)
    ]
    assert found == []


def test_every_exception_is_still_needed():
    # an exception whose definition is gone would let the next one in unnoticed
    unused = [
        key
        for key in EXCEPTIONS
        if not any(_excepted(key[0], file, what) for file, tree in SOURCES.items() for _, what in RULES[key[0]](tree))
    ]
    assert unused == []


def test_homes_hold_what_they_are_the_home_of():
    # the scan looks in the right files: each home really defines its rule
    for rule, home in HOMES.items():
        assert list(RULES[rule](SOURCES[home])), rule


@pytest.mark.parametrize(
    ("rule", "source"),
    [
        ("columns", 'COLUMNS = ("image_id", "size_bin")'),  # a second list of column names
        ("columns", "from locus_data.schema import IMAGES\nROW = (IMAGES, 'answer')"),  # one restated beside them
        ("columns", 'table = read(path, columns=["answer"])'),
        ("columns", 'row = {"problem": p, "image_id": i}'),  # a row built by hand
        ("options", "class RewardConfig:\n    coverage_tau: float = 0.9"),  # a second declaration of an option
        ("options", 'OPTIONS = ("coord_frame", "format_weight")'),  # a restated list of option names
        ("options", "def score(box, format_weight=0.1): ..."),  # a second default
        ("pixel numbers", "class Generation:\n    max_pixels: int = 4194304"),
        ("splits", 'SPLITS = ("train", "val")'),
        ("splits", 'path = root / "val.parquet"'),
        ("splits", 'path = root / f"{split}.parquet"'),
        ("splits", 'total = cfg.num_train if split == "train" else cfg.num_val'),
    ],
)
def test_the_scan_catches_a_second_definition(rule, source):
    # the guard can fail: each kind of second definition it exists for is reported
    assert list(RULES[rule](ast.parse(source)))
