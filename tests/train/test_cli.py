"""`locus-train`: help on stdout, a missing or unknown command is a usage error, subcommands reach their parser."""

import subprocess
import sys
from pathlib import Path

import pytest

from locus_train.cli import main


def test_help_lists_the_commands_on_stdout(capsys):
    # asked-for help is output, not an error: exit 0 and nothing on stderr
    assert main(["--help"]) == 0
    out = capsys.readouterr()
    assert "trl" in out.out and out.err == ""


@pytest.mark.parametrize("argv", [[], ["bogus"]])
def test_missing_or_unknown_command_is_a_usage_error(argv, capsys):
    # no command, or a typo: the usage goes to stderr with exit status 2, as argparse does
    assert main(argv) == 2
    out = capsys.readouterr()
    assert "usage: locus-train COMMAND" in out.err and out.out == ""


def test_console_script_runs_the_trl_parser():
    # the installed entry point dispatches to `locus-train trl`, whose own --help describes it
    script = Path(sys.executable).with_name("locus-train")  # the venv's bin/, which need not be on PATH
    result = subprocess.run([str(script), "trl", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "GRPOTrainer" in result.stdout
