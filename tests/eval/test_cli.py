"""``locus-eval`` as a new user meets it: every subcommand explains itself, and wrong paths get one-line errors."""

import pytest

from locus_eval.cli import build_parser, main


def _subparsers():
    (action,) = [a for a in build_parser()._actions if a.dest == "command"]
    return action.choices


def test_every_subcommand_has_a_description(capsys):
    # `locus-eval <cmd> --help` printed only the usage line before; each must say what it does
    for name, parser in _subparsers().items():
        assert parser.description and len(parser.description) > 40, name
        with pytest.raises(SystemExit) as exit_info:
            main([name, "--help"])
        assert exit_info.value.code == 0
        assert parser.description.split()[0] in capsys.readouterr().out


def test_score_with_a_missing_predictions_file_says_file_not_found(tmp_path, capsys):
    # a wrong path was reported as "no prediction for example 0"; it must name the file and what to pass
    missing = tmp_path / "run" / "predictions.jsonl"
    with pytest.raises(SystemExit):
        main(["score", "--data", str(tmp_path / "val.parquet"), "--predictions", str(missing),
              "--coord-frame", "qwen2_5_vl"])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"{missing}: file not found" in err and "cue-search" in err
