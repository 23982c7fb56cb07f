"""``locus-eval lmms-eval``: the command line each backbone gets, saved with the results, and lmms-eval's own view."""

import ast
import importlib.util
import json
import re
import shlex
import sys
from pathlib import Path

import pytest

from locus_eval import lmms
from locus_eval.cli import main
from tests.testing_utils import require_lmms_eval


def flag(argv, name):
    return argv[argv.index(name) + 1]


def model_args(argv):
    return dict(part.split("=", 1) for part in flag(argv, "--model_args").split(","))


def saved_commands(out: Path) -> list[list[str]]:
    """command.sh parsed back with the shell's own quoting rules; it must equal command.json's argv lists."""
    lines = [
        line for line in (out / "command.sh").read_text().splitlines() if line and not line.startswith(("#", "set"))
    ]
    from_sh = [shlex.split(line) for line in lines]
    assert from_sh == json.loads((out / "command.json").read_text())["commands"]
    return from_sh


@pytest.mark.parametrize(
    ("backbone", "model", "thinking_arg"),
    [
        ("qwen2_5_vl_7b", "qwen2_5_vl", None),  # Instruct: no thinking switch in lmms-eval's qwen2_5_vl class
        ("qwen3_vl_4b", "qwen3_vl", "True"),  # the Thinking model: enable_thinking, so lmms-eval strips to </think>
        ("mimo_vl_7b", "qwen2_5_vl", None),  # Qwen2.5-VL architecture; it opens <think> itself
    ],
)
def test_each_backbone_gets_its_model_class_thinking_and_the_paper_budget(
    tmp_path, capsys, backbone, model, thinking_arg
):
    out = tmp_path / "lmms"
    main(["lmms-eval", "--model", "/ckpt/locus/global_step_100/actor/huggingface", "--backbone", backbone,
          "--out", str(out), "--dry-run"])  # fmt: skip
    argvs = saved_commands(out)
    assert [flag(a, "--tasks").split(",") for a in argvs] == [list(lmms.PERCEPTION_TASKS), list(lmms.REASONING_TASKS)]
    for argv in argvs:
        assert argv[1:3] == ["-m", "lmms_eval"] and flag(argv, "--model") == model
        args = model_args(argv)
        assert args["pretrained"] == "/ckpt/locus/global_step_100/actor/huggingface"
        assert args.get("enable_thinking") == thinking_arg
        # the tasks' own 16/128-token limits would cut a thinking model off: the paper's greedy 8192 everywhere
        assert flag(argv, "--gen_kwargs") == "max_new_tokens=8192,temperature=0"
        assert json.loads(flag(argv, "--reasoning_tags")) == [["<think>", "</think>"]]
        assert flag(argv, "--output_path") == str(out) and "--log_samples" in argv
    record = json.loads((out / "command.json").read_text())
    assert record["lmms_eval_version"] == "0.7.3" and record["thinking"] == (backbone != "qwen2_5_vl_7b")
    assert shlex.join(argvs[0]) in capsys.readouterr().out


def test_budget_and_tasks_are_overridable(tmp_path):
    out = tmp_path / "lmms"
    main(["lmms-eval", "--model", "/ckpt", "--backbone", "qwen3_vl_4b", "--out", str(out), "--dry-run",
          "--tasks", "pope,ai2d", "--max-new-tokens", "16384", "--limit", "5"])  # fmt: skip
    (argv,) = saved_commands(out)
    assert flag(argv, "--tasks") == "pope,ai2d" and flag(argv, "--gen_kwargs").startswith("max_new_tokens=16384,")
    assert flag(argv, "--limit") == "5"


def test_a_comma_in_the_checkpoint_path_is_refused(tmp_path, capsys):
    # lmms-eval splits --model_args on commas; the run would load a cut path much later
    with pytest.raises(SystemExit):
        main(["lmms-eval", "--model", "/ckpt/a,b", "--backbone", "qwen2_5_vl_7b", "--out", str(tmp_path), "--dry-run"])
    assert "contains a comma" in capsys.readouterr().err


def _init_parameters(path: Path, class_name: str) -> set[str]:
    """Constructor parameters of an lmms-eval model class, read from its source (importing it needs decord, CUDA)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            init = next(n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
            return {a.arg for a in init.args.args + init.args.kwonlyargs}
    raise AssertionError(f"no class {class_name} in {path}")


@require_lmms_eval
@pytest.mark.parametrize("backbone", list(lmms.LMMS_BACKBONES))
def test_commands_parse_with_lmms_evals_own_parser(tmp_path, monkeypatch, backbone):
    # the flags, the gen_kwargs string, the reasoning tags and the model args, checked against lmms-eval itself
    from lmms_eval.__main__ import parse_eval_args
    from lmms_eval.api.reasoning import parse_reasoning_tags_config, strip_reasoning_tags
    from lmms_eval.utils import simple_parse_args_string

    root = Path(importlib.util.find_spec("lmms_eval").submodule_search_locations[0])
    config = lmms.LmmsEvalConfig(checkpoint="/ckpt", backbone=backbone, out=tmp_path)
    task_files = [f.read_text(encoding="utf-8") for f in (root / "tasks").rglob("*.yaml")]
    for argv in lmms.commands(config):
        monkeypatch.setattr(sys, "argv", ["lmms_eval", *argv[3:]])
        _, args = parse_eval_args()
        assert args.model == lmms.LMMS_BACKBONES[backbone].model and args.output_path == str(tmp_path)
        assert simple_parse_args_string(args.gen_kwargs) == {"max_new_tokens": 8192, "temperature": 0}
        tags = parse_reasoning_tags_config(cli_value=args.reasoning_tags)
        # a closed think block, and a template that pre-opened <think>: both leave only the answer
        assert strip_reasoning_tags("<think>A or B?</think> B", tags) == "B"
        assert strip_reasoning_tags("A or B?</think> B", tags) == "B"
        class_name = {"qwen2_5_vl": "Qwen2_5_VL", "qwen3_vl": "Qwen3_VL"}[args.model]
        accepted = _init_parameters(root / "models" / "simple" / f"{args.model}.py", class_name)
        # the class asserts it got no unknown kwargs, so every model arg must be a constructor parameter
        assert set(simple_parse_args_string(args.model_args)) <= accepted
        for task in args.tasks.split(","):
            pattern = re.compile(rf"^(task|group):\s*[\"']?{re.escape(task)}[\"']?\s*$", re.M)
            assert any(pattern.search(text) for text in task_files), f"{task}: no such lmms-eval task or group"
