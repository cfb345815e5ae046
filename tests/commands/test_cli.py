"""The shared command-line plumbing: argument types, one-line errors, run folders."""

import argparse

import pytest

from vpd_lite.commands import cli


def test_number_types_accept_and_refuse():
    assert cli.positive_int("3") == 3
    assert cli.nonneg_float("0") == 0.0
    for bad, parse in [("0", cli.positive_int), ("-3", cli.positive_int), ("abc", cli.positive_int),
                       ("-1", cli.nonneg_int), ("-0.5", cli.nonneg_float), ("nan", cli.positive_float)]:
        with pytest.raises(argparse.ArgumentTypeError):
            parse(bad)


def test_unit_interval_takes_fractions_only():
    assert cli.unit_interval("0") == 0.0 and cli.unit_interval("0.25") == 0.25 and cli.unit_interval("1") == 1.0
    for bad in ("2", "1.0001", "-0.1", "nan", "inf", "half"):
        with pytest.raises(argparse.ArgumentTypeError, match="is not a number"):
            cli.unit_interval(bad)


def test_run_main_turns_errors_into_one_line(capsys):
    def main(argv):
        raise ValueError("the file\nis   broken")

    assert cli.run_main(main, "thing", []) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "python -m vpd_lite.thing: error: the file is broken" in err
    with pytest.raises(ValueError):
        cli.run_main(main, "thing", ["--debug"])


def test_run_main_passes_argparse_exit_through():
    def main(argv):
        ap = cli.make_parser("thing", "a test")
        ap.add_argument("--n", type=cli.positive_int)
        ap.parse_args(argv)
        return 0

    assert cli.run_main(main, "thing", ["--n", "2"]) == 0
    with pytest.raises(SystemExit) as exc:
        cli.run_main(main, "thing", ["--n", "0"])
    assert exc.value.code == 2


def test_default_run_dir_is_new_and_under_root(tmp_path):
    first = cli.default_run_dir("reproduce", tmp_path)
    assert first.parent == tmp_path and first.name.startswith("reproduce-") and not first.exists()
    first.mkdir()
    assert cli.default_run_dir("reproduce", tmp_path) != first


def test_out_folder_refuses_a_file(tmp_path):
    assert cli.out_folder(str(tmp_path)) == tmp_path
    assert cli.out_folder(str(tmp_path / "new")) == tmp_path / "new"
    (tmp_path / "afile").write_text("x")
    with pytest.raises(argparse.ArgumentTypeError, match="is a file"):
        cli.out_folder(str(tmp_path / "afile"))
