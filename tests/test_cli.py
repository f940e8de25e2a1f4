import json
import subprocess
import sys
from pathlib import Path

import pytest

from brainlib.cli import main


def test_audit_json(small_dataset, capsys):
    with pytest.warns(UserWarning, match="differs from the manifest"):
        assert main(["audit", str(small_dataset), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["images"] == 20
    assert {"exact", "near", "splits", "nearest_distance_histogram"} <= set(report)
    assert {"paper", "grouped", "dedup"} == set(report["splits"])
    # the dedup split keeps the paper split's test set and drops its duplicates in training
    assert (
        report["splits"]["dedup"]["test"]["images"] == report["splits"]["paper"]["test"]["images"]
    )
    assert report["splits"]["dedup"]["test"]["with_near_duplicate_in_train"] == 0


@pytest.mark.filterwarnings("ignore:.*differs from the manifest")
def test_split_writes_the_same_manifest_twice(small_dataset, tmp_path, capsys):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    for out in (a, b):
        assert (
            main(["split", str(small_dataset), "--kind", "paper", "--seed", "3", "--out", str(out)])
            == 0
        )
    assert a.read_bytes() == b.read_bytes()


@pytest.mark.filterwarnings("ignore:.*differs from the manifest")
def test_grouped_split_keeps_a_duplicate_with_its_copy(small_dataset, tmp_path):
    import shutil

    from brainlib.data.splits import read_split_csv

    shutil.copyfile(small_dataset / "normal" / "N_0.jpg", small_dataset / "normal" / "N_copy.jpg")
    for seed in range(6):  # the copy lands with its original whatever the seed
        out = tmp_path / f"grouped{seed}.csv"
        args = ["split", str(small_dataset), "--kind", "grouped", "--seed", str(seed)]
        assert main([*args, "--out", str(out)]) == 0
        rows = {r["path"]: r["split"] for r in read_split_csv(out)}
        assert len(rows) == 21
        assert rows["normal/N_copy.jpg"] == rows["normal/N_0.jpg"]


def test_bad_data_gives_a_clear_error_and_exit_code(small_dataset, capsys):
    (small_dataset / "normal" / "bad.jpg").write_bytes(b"nope")
    assert main(["audit", str(small_dataset)]) == 2
    err = capsys.readouterr().err
    assert "brainlib: error:" in err and "bad.jpg" in err


def test_verify_reports_mismatch_with_exit_code(small_dataset, capsys):
    with pytest.warns(UserWarning):
        code = main(["verify", str(small_dataset)])
    assert code == 1 and "differs from the manifest" in capsys.readouterr().out


def test_python_dash_m_entry_point():
    out = subprocess.run(
        [sys.executable, "-m", "brainlib", "profiles"], capture_output=True, text=True, check=True
    )
    assert "demo" in out.stdout and "paper" in out.stdout and "smoke" in out.stdout


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--set", "name=foo"], "'name' cannot be set"),
        (["--set", "dropout=2"], "dropout must be in [0, 1)"),
        (["--set", "learning_rate=0"], "learning_rate must be a finite number above 0"),
        (["--set", "learning_rate=-1"], "learning_rate must be a finite number above 0"),
        (["--set", "learning_rate=nan"], "learning_rate must be a finite number above 0"),
        (["--seed", "-1"], "a seed is 0 or more"),
        (["--set", "extra=1"], "unknown profile field 'extra'"),
    ],
)
def test_bad_settings_stop_before_anything_is_written(tmp_path, capsys, extra, message):
    runs = tmp_path / "runs"
    try:
        code = main(["train", "--profile", "smoke", "--runs", str(runs), *extra])
    except SystemExit as stop:  # argparse's own check (--seed)
        code = stop.code
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    if "known:" in err:
        assert "extra" not in err.split("known:")[1]
    assert not runs.exists()  # nothing to delete before the corrected command


def test_file_system_errors_name_the_file_the_user_gave(small_dataset, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    for out, problem in ((tmp_path, "is a folder, not a file"),
                         (blocker / "split.csv", "a-file is a file, not a folder"),
                         (Path("/proc/brainlib-test/split.csv"), "No such file")):  # fmt: skip
        with pytest.warns(UserWarning):
            code = main(["split", str(small_dataset), "--kind", "paper", "--out", str(out)])
        err = capsys.readouterr().err
        assert code == 2 and f"{out}: " in err and problem in err, err
        assert ".tmp-" not in err and "Traceback" not in err


def test_an_unexpected_error_is_one_line_unless_debug(monkeypatch, capsys):
    import brainlib.cli as cli

    def boom(args):
        raise KeyError("surprise")

    monkeypatch.setattr(cli, "cmd_profiles", boom)
    assert main(["profiles"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--debug" in err and "KeyError" in err
    with pytest.raises(KeyError):
        main(["--debug", "profiles"])


def test_every_option_has_help_text():
    import argparse

    from brainlib.cli import build_parser

    missing = []

    def walk(parser, name):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub, sub_parser in action.choices.items():
                    walk(sub_parser, sub)
            elif action.help is None:
                missing.append(f"{name} {action.option_strings or action.dest}")

    walk(build_parser(), "brainlib")
    assert not missing


def test_skip_bad_is_offered_only_where_images_are_scanned():
    from brainlib.cli import build_parser

    parser = build_parser()
    for argv in (["verify", "x"], ["audit", "x"], ["split", "x", "--out", "s.csv"], ["train"],
                 ["manifest", "x"], ["evaluate", "--external", "x"]):  # fmt: skip
        assert parser.parse_args([*argv, "--skip-bad"]).skip_bad is True
    assert not hasattr(parser.parse_args(["export"]), "skip_bad")


@pytest.mark.parametrize(
    ("code", "words"), [(30, "the file system is read-only"), (28, "the disk is full")]
)  # errno.EROFS, errno.ENOSPC on Linux
def test_read_only_and_full_disks_name_the_file(small_dataset, tmp_path, capsys, monkeypatch,
                                                code, words):  # fmt: skip
    import errno
    import os

    from brainlib import fileio

    assert code == {30: errno.EROFS, 28: errno.ENOSPC}[code]

    def refuse(fd, data):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(fileio.os, "fsync", lambda fd: refuse(fd, b""))
    out = tmp_path / "split.csv"
    with pytest.warns(UserWarning):
        assert main(["split", str(small_dataset), "--kind", "paper", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{out}: {words}" in err and "Traceback" not in err
    assert not out.exists() and not list(tmp_path.glob(".tmp-*"))  # nothing half-written
