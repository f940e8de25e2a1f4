import json
import subprocess
import sys

import pytest

from brainlib.cli import main


def test_audit_json(small_dataset, capsys):
    with pytest.warns(UserWarning, match="differs from the manifest"):
        assert main(["audit", str(small_dataset), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["images"] == 20
    assert {"exact", "near", "splits", "nearest_distance_histogram"} <= set(report)
    assert {"paper", "grouped"} == set(report["splits"])


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
