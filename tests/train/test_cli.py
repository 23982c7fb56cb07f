"""`locus-train`: help on stdout, a missing or unknown command is a usage error, subcommands reach their parser."""

import subprocess

import pytest

from locus_train.cli import main
from tests.testing_utils import installed_command


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
    # the script of the interpreter running the tests (its bin/, else its entry point): any environment, one verdict
    result = subprocess.run([*installed_command("locus-train"), "trl", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "GRPOTrainer" in result.stdout
