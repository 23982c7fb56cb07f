"""Write the EasyR1 config schema (dataclass fields, types, defaults, accepted choices) as JSON, from source files.

EasyR1 cannot be imported on a CPU CI machine (its config module pulls vLLM), so the recipe tests check our YAMLs
against this fixture instead. The script only *reads* EasyR1's files with :mod:`ast`; nothing is imported or built.

Regenerate (from a checkout at the pinned commit)::

    git -C /path/to/EasyR1 checkout b44b311b669bf1fd1aa2fc36f2251482ba33cb16
    python locus_train/easyr1_schema/generate.py --easyr1 /path/to/EasyR1 > locus_train/easyr1_schema/schema.json

From a bare mirror: ``git -C MIRROR archive COMMIT | tar -x -C DIR`` and pass ``--easyr1 DIR --commit COMMIT``.
"""

import argparse
import ast
import json
import subprocess
import sys
from pathlib import Path
from typing import Any


# Files that define PPOConfig and every dataclass nested in it (verl/trainer/config.py imports the rest).
CONFIG_FILES = (
    "verl/trainer/config.py",
    "verl/workers/config.py",
    "verl/workers/actor/config.py",
    "verl/workers/critic/config.py",
    "verl/workers/rollout/config.py",
    "verl/workers/reward/config.py",
)
ROOT = "PPOConfig"


def _is_dataclass(node: ast.ClassDef) -> bool:
    return any(
        (isinstance(d, ast.Name) and d.id == "dataclass") or (isinstance(d, ast.Call) and d.func.id == "dataclass")
        for d in node.decorator_list
    )


def _field(stmt: ast.AnnAssign) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": ast.unparse(stmt.annotation)}
    value = stmt.value
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "field":
        keywords = {k.arg: k.value for k in value.keywords}
        if "default" in keywords:
            spec["default"] = ast.literal_eval(keywords["default"])
        if "default_factory" in keywords:
            factory = keywords["default_factory"]
            # `dict`, `list` or a nested dataclass name; lambdas are not used by the config dataclasses
            spec["factory"] = ast.unparse(factory)
        if "init" in keywords:
            spec["init"] = ast.literal_eval(keywords["init"])
    elif value is not None:
        spec["default"] = ast.literal_eval(value)
    spec["default"] = list(spec["default"]) if isinstance(spec.get("default"), tuple) else spec.get("default")
    if "factory" in spec:
        del spec["default"]
    return spec


def read_dataclasses(easyr1: Path) -> dict[str, dict[str, Any]]:
    classes: dict[str, dict[str, Any]] = {}
    for rel in CONFIG_FILES:
        tree = ast.parse((easyr1 / rel).read_text(encoding="utf-8"))
        for node in tree.body:
            if not (isinstance(node, ast.ClassDef) and _is_dataclass(node)):
                continue
            if node.name in classes:
                raise SystemExit(f"dataclass {node.name} defined twice ({classes[node.name]['source']}, {rel})")
            fields = {s.target.id: _field(s) for s in node.body if isinstance(s, ast.AnnAssign)}
            classes[node.name] = {"source": rel, "fields": fields}
    return classes


def _compared_strings(tree: ast.AST, name: str) -> set[str]:
    """String constants compared with ``==`` / ``in`` against a variable or attribute called ``name``."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        left = node.left
        ident = left.id if isinstance(left, ast.Name) else left.attr if isinstance(left, ast.Attribute) else None
        if ident != name:
            continue
        for comparator in node.comparators:
            for const in ast.walk(comparator):
                if isinstance(const, ast.Constant) and isinstance(const.value, str):
                    found.add(const.value)
    return found


def _literal_args(tree: ast.AST, arg_name: str) -> set[str]:
    """Values of ``Literal[...]`` annotations on function arguments called ``arg_name``."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.arg) and node.arg == arg_name and isinstance(node.annotation, ast.Subscript):
            if ast.unparse(node.annotation.value) == "Literal":
                found |= {c.value for c in ast.walk(node.annotation.slice) if isinstance(c, ast.Constant)}
    return found


def read_choices(easyr1: Path) -> dict[str, list[str]]:
    """Values EasyR1's code accepts for enum-like string fields (anything else fails after the cluster starts)."""
    algos = ast.parse((easyr1 / "verl/trainer/core_algos.py").read_text(encoding="utf-8"))
    workers = ast.parse((easyr1 / "verl/workers/fsdp_workers.py").read_text(encoding="utf-8"))
    estimator = next(n for n in ast.walk(algos) if isinstance(n, ast.ClassDef) and n.name == "AdvantageEstimator")
    choices = {
        "algorithm.adv_estimator": {
            s.value.value for s in estimator.body if isinstance(s, ast.Assign) and isinstance(s.value, ast.Constant)
        },
        "algorithm.kl_penalty": _compared_strings(algos, "kl_penalty"),
        "algorithm.kl_type": _compared_strings(algos, "kl_type"),
        "worker.actor.loss_avg_mode": _literal_args(algos, "loss_avg_mode"),
        "worker.actor.optim.strategy": _compared_strings(workers, "strategy") & {"adamw", "adamw_bf16"},
        "worker.actor.optim.lr_scheduler_type": _compared_strings(workers, "lr_scheduler_type"),
    }
    for key, values in choices.items():
        if not values:
            raise SystemExit(f"found no accepted values for {key}; EasyR1's code moved, update read_choices()")
    return {key: sorted(values) for key, values in choices.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--easyr1", type=Path, required=True, help="EasyR1 source tree (the repo root)")
    parser.add_argument("--commit", help="commit of that tree (default: git rev-parse HEAD inside it)")
    args = parser.parse_args(argv)
    commit = (
        args.commit
        or subprocess.run(
            ["git", "-C", str(args.easyr1), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
        ).stdout.strip()
    )
    schema = {
        "easyr1_commit": commit,
        "regenerate": "python locus_train/easyr1_schema/generate.py --easyr1 EASYR1_DIR [--commit SHA]",
        "root": ROOT,
        "dataclasses": read_dataclasses(args.easyr1),
        "choices": read_choices(args.easyr1),
    }
    json.dump(schema, sys.stdout, indent=1, sort_keys=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
