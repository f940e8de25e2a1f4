"""Training: the smoke profile end to end, determinism, resume after kill -9, the fast path."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from brainlib.config import load_profile
from brainlib.runs import RunError, load_trained_model
from brainlib.training import train

ROOT = Path(__file__).resolve().parents[1]
COMPARED = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate")


def _history(folder: Path) -> list[dict]:
    with open(folder / "history.csv", newline="") as fh:
        return [{k: row[k] for k in COMPARED} for row in csv.DictReader(fh)]


def _weights(folder: Path, which: str = "best") -> list[np.ndarray]:
    return load_trained_model(folder, which).get_weights()


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory):
    """Both models trained once under the smoke profile."""
    root = tmp_path_factory.mktemp("runs")
    profile = load_profile("smoke")
    return {v: train(profile, v, runs_root=root, verbose=0) for v in ("se", "base")}, root


def test_smoke_training_of_both_models_writes_a_complete_run_folder(smoke_runs):
    runs, _ = smoke_runs
    for variant, result in runs.items():
        folder = result.folder
        assert folder.name == f"{variant}-paper-seed42"
        for name in ("run.json", "split.csv", "history.csv", "log.txt"):
            assert (folder / name).is_file(), name
        assert (folder / "weights" / "best.weights.h5").is_file()
        assert (folder / "weights" / "last.weights.h5").is_file()
        assert not list((folder / "weights").glob("epoch-*"))  # checkpoints cleaned up
        meta = json.loads((folder / "run.json").read_text())
        assert meta["status"] == "complete" and meta["variant"] == variant
        assert {
            "git_commit",
            "versions",
            "device",
            "data_manifest_sha256",
            "started",
            "finished",
        } <= set(meta)
        assert meta["profile"]["name"] == "smoke" and meta["epochs"] == len(result.history)
        rows = _history(folder)
        assert [int(r["epoch"]) for r in rows] == list(range(1, len(rows) + 1))
        assert len((folder / "log.txt").read_text().splitlines()) >= len(rows)
        model = load_trained_model(folder)
        assert model.output.shape[-1] == 4


def test_a_complete_run_is_not_trained_again(smoke_runs):
    runs, root = smoke_runs
    before = (runs["se"].folder / "history.csv").read_bytes()
    again = train(load_profile("smoke"), "se", runs_root=root, verbose=0)
    assert again.resumed_from == len(again.history)
    assert (runs["se"].folder / "history.csv").read_bytes() == before


def test_same_seed_same_history_and_weights_also_from_a_memory_mapped_cache(smoke_runs, tmp_path):
    """The same seed trains the same run again, byte for byte, here with the trunk cache read
    from disk (over a memory budget of 0 GiB) where the first run held it in memory."""
    runs, _ = smoke_runs
    other = train(load_profile("smoke", cache_memory_gib=0.0), "base", runs_root=tmp_path,
                  verbose=0)  # fmt: skip
    assert "memory-mapped from disk" in (other.folder / "log.txt").read_text()
    assert "in memory" in (runs["base"].folder / "log.txt").read_text()
    assert _history(other.folder) == _history(runs["base"].folder)
    for a, b in zip(_weights(other.folder), _weights(runs["base"].folder), strict=True):
        np.testing.assert_array_equal(a, b)
    assert (other.folder / "split.csv").read_bytes() == (
        runs["base"].folder / "split.csv"
    ).read_bytes()


def test_a_folder_of_another_configuration_is_refused(smoke_runs):
    runs, root = smoke_runs
    with pytest.raises(RunError, match=r"other settings \(dropout: 0.5 != 0.3"):
        train(load_profile("smoke", dropout=0.3), "se", runs_root=root, verbose=0)
    # settings that do not change training (the grid, the bootstrap) reuse the finished run
    again = train(load_profile("smoke", bootstrap_resamples=7, seeds="42,43"), "se",
                  runs_root=root, verbose=0)  # fmt: skip
    assert again.folder == runs["se"].folder and again.model is None


def test_fast_path_trains_as_end_to_end(smoke_runs, tmp_path):
    from brainlib.models import trunk_and_top

    runs, _ = smoke_runs
    fast = runs["se"]  # the smoke profile trains on the cached trunk
    assert load_profile("smoke").fast_path and "fast path" in (fast.folder / "log.txt").read_text()
    slow = train(load_profile("smoke", fast_path=False), "se", runs_root=tmp_path, verbose=0)
    assert "fast path" not in (slow.folder / "log.txt").read_text()
    # The two code paths on the same weights: the same predictions, on any CPU.
    trunk, top = trunk_and_top(slow.model)
    x = np.random.default_rng(0).uniform(-1, 1, size=(4, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(
        top(trunk(x, training=False), training=False), slow.model(x, training=False), atol=1e-4
    )
    # Two trajectories agree bit for bit on one machine, but float32 sums taken in another
    # order (oneDNN picks its kernels by instruction set) drift apart over the steps: 7e-4
    # in loss after 2 epochs was seen on an AVX2-only CPU, so the tolerance is 1e-2.
    for a, b in zip(slow.history, fast.history, strict=True):
        for key in ("loss", "val_loss"):
            assert abs(a[key] - b[key]) < 1e-2, (key, a[key], b[key])
    for a, b in zip(slow.model.get_weights(), fast.model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-2)


def _train_cmd(runs: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "brainlib", "train", "--profile", "smoke", "--variant", "base",
        "--runs", str(runs), "--set", "max_epochs=5", "--set", "early_stopping_patience=10",
        *extra,
    ]  # fmt: skip


def test_resume_after_sigkill_gives_the_uninterrupted_history(tmp_path):
    """A run killed with SIGKILL after its second epoch resumes to the history and weights of
    an uninterrupted run (trained meanwhile, beside it). The checkpoints hold whatever
    ``fit`` trains (the whole model, or its top on the fast path, as here)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    ref = tmp_path / "ref"
    reference = subprocess.Popen(_train_cmd(ref), env=env, cwd=ROOT,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        _train_cmd(killed), env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    latest = killed / "smoke" / "base-paper-seed42" / "weights" / "latest.json"
    deadline = time.time() + 300
    while time.time() < deadline:
        if latest.is_file() and json.loads(latest.read_text())["epoch"] >= 2:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    _, err = reference.communicate(timeout=600)
    assert reference.returncode == 0, err.decode()[-2000:]
    folder = killed / "smoke" / "base-paper-seed42"
    meta = json.loads((folder / "run.json").read_text())
    assert meta["status"] == "running", "the run finished before it could be killed"
    done = json.loads(latest.read_text())["epoch"]
    assert 2 <= done < 5
    subprocess.run(_train_cmd(killed), check=True, env=env, capture_output=True, cwd=ROOT)
    assert "resuming after epoch" in (folder / "log.txt").read_text()
    ref_folder = ref / "smoke" / "base-paper-seed42"
    assert _history(folder) == _history(ref_folder)
    for which in ("best", "last"):
        for a, b in zip(_weights(folder, which), _weights(ref_folder, which), strict=True):
            np.testing.assert_array_equal(a, b)


def test_skip_bad_leaves_unreadable_images_out_of_a_run(small_dataset, tmp_path):
    from brainlib.data import DataError
    from brainlib.training import prepare

    (small_dataset / "normal" / "broken.jpg").write_bytes(b"not a jpeg")
    profile = load_profile("smoke", subsample=0)
    with pytest.raises(DataError, match=r"broken\.jpg"):
        prepare(profile, "se", tmp_path / "a", small_dataset)
    assert not (tmp_path / "a").exists()  # refused before anything was written
    with pytest.warns(UserWarning, match=r"broken\.jpg"):
        plan = prepare(profile, "se", tmp_path / "b", small_dataset, skip_bad=True)
    assert len(plan.records) == 20 and "broken" not in (plan.folder / "split.csv").read_text()


def test_a_run_folder_is_held_by_one_process_and_cleaned_on_entry(tmp_path):
    from brainlib import runs

    folder = tmp_path / "smoke" / "se-paper-seed42"
    (folder / "weights").mkdir(parents=True)
    stale = [folder / ".tmp-99-best.weights.h5", folder / "weights" / ".tmp-99-x.weights.h5"]
    for path in stale:
        path.write_bytes(b"half a file")
    with runs.locked(folder):
        assert not any(p.exists() for p in stale)  # left by a killed write: gone
        with pytest.raises(
            RunError, match=f"in use by another brainlib process \\(pid {os.getpid()}\\)"
        ):
            with runs.locked(folder):
                pass
    with runs.locked(folder):  # released
        pass
    fresh = tmp_path / "new-runs" / "smoke" / "base-paper-seed7"
    with pytest.raises(ValueError), runs.locked(fresh):
        raise ValueError("refused before writing anything")
    assert not (tmp_path / "new-runs").exists()  # nor the folders made to hold it


def test_the_lock_holds_across_processes_and_dies_with_its_holder(tmp_path):
    """Another process (another brainlib command) is refused by name; a killed holder frees it."""
    import signal
    import subprocess
    import sys

    from brainlib import runs

    folder = tmp_path / "runs" / "smoke" / "se-paper-seed42"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from brainlib import runs\n"
         f"with runs.locked({str(folder)!r}):\n    print('held', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        refused = f"in use by another brainlib process \\(pid {holder.pid}\\)"
        with pytest.raises(RunError, match=refused), runs.locked(folder):
            pass
    finally:
        holder.send_signal(signal.SIGKILL)  # no clean exit: the OS releases the lock
        holder.wait(timeout=30)
    with runs.locked(folder):  # free again
        assert (folder / runs.LOCK_HOLDER).read_text().strip() == str(os.getpid())


def test_a_start_that_failed_does_not_block_the_corrected_command(tmp_path):
    from brainlib.models import WeightsError

    bad = tmp_path / "not-weights.h5"
    bad.write_text("plain text")
    profile = load_profile("smoke", max_epochs=1)
    for weights in (str(tmp_path / "missing.h5"), str(bad)):
        with pytest.raises(WeightsError, match=r"does not exist|not an HDF5 file"):
            train(profile, "base", runs_root=tmp_path / "runs", weights=weights, verbose=0)
    assert not (tmp_path / "runs" / "smoke" / "base-paper-seed42").exists()
    # a start that got as far as writing run.json, then failed: the next command proceeds
    folder = tmp_path / "runs" / "smoke" / "base-paper-seed42"
    folder.mkdir(parents=True)
    stub = {"status": "running", "variant": "base", "seed": 42, "profile": {"dropout": 0.1}}
    (folder / "run.json").write_text(json.dumps(stub))
    result = train(profile, "base", runs_root=tmp_path / "runs", verbose=0)
    assert (
        len(result.history) == 1
        and json.loads((folder / "run.json").read_text())["status"] == "complete"
    )


def test_saved_weights_carry_no_optimizer_state(smoke_runs):
    import h5py

    results, _ = smoke_runs
    for result in results.values():
        for name in ("best", "last"):
            with h5py.File(result.folder / "weights" / f"{name}.weights.h5") as f:
                assert "optimizer" not in f, name


def test_trunk_cache_is_computed_once_and_shared_by_both_models(smoke_runs):
    """Both models of a frozen trunk reuse one cache (same trunk weights, same images);
    reading it from disk instead of memory trains the same (the same-seed test above)."""
    runs, root = smoke_runs
    logs = {v: (r.folder / "log.txt").read_text() for v, r in runs.items()}
    assert "computed in" in logs["se"] and "in memory" in logs["se"]
    assert "reused" in logs["base"]
    caches = list((root / "smoke" / "trunk-cache").iterdir())
    assert len(caches) == 1 and (caches[0] / "done.json").is_file()


def test_progressive_resizing_starts_each_stage_from_the_last(tmp_path, monkeypatch):
    """``init_from``: training the last stage trains the earlier ones first, on the same
    split, and starts from their best weights; every stage resumes like any run. (The
    real stages train every layer; the plumbing is the same on the fast path, which
    traces only the top and so keeps this test short.)"""
    import brainlib.config as config

    toml = tmp_path / "profiles.toml"
    toml.write_text(
        '[low]\ndataset = "phantoms"\nimage_size = 32\nphantoms_per_class = 10\n'
        'phantom_size = 64\nweights = "none"\nfast_path = true\nmax_epochs = 2\n'
        "batch_size = 8\n"
        '[high]\ndataset = "phantoms"\nimage_size = 48\nphantoms_per_class = 10\n'
        'phantom_size = 64\nweights = "none"\nfast_path = true\nmax_epochs = 1\n'
        'batch_size = 8\ninit_from = "low"\n'
    )
    monkeypatch.setattr(config, "PROFILES_FILE", toml)
    result = train(load_profile("high", split="grouped"), "base", runs_root=tmp_path, verbose=0)
    low = tmp_path / "low" / "base-grouped-seed42"
    meta = json.loads((result.folder / "run.json").read_text())
    assert meta["status"] == "complete" and meta["init_weights"]["run"] == str(low)
    assert json.loads((low / "run.json").read_text())["status"] == "complete"
    assert (low / "split.csv").read_text() == (result.folder / "split.csv").read_text()
    log = (result.folder / "log.txt").read_text()
    assert f"starting weights: {low / 'weights' / 'best.weights.h5'} (32 px" in log
    start = load_trained_model(low)
    high = load_trained_model(result.folder)
    assert [w.shape for w in start.get_weights()] == [w.shape for w in high.get_weights()]


def test_fit_accuracy_scores_the_training_images_once_and_names_a_changed_one(smoke_runs, tmp_path):
    from brainlib.data.splits import read_split_csv
    from brainlib.evaluation import EvaluationError, fit_accuracy

    runs, _ = smoke_runs
    folder = tmp_path / "se"
    shutil.copytree(runs["se"].folder, folder)
    fit = fit_accuracy(folder)
    train = [r for r in read_split_csv(folder / "split.csv") if r["split"] == "train"]
    assert fit["n_train"] == len(train) and 0 <= fit["train_accuracy"] <= 1
    share = sum(fit["train_recall"][c] * sum(r["class"] == c for r in train)
                for c in fit["train_recall"]) / len(train)  # fmt: skip
    assert share == pytest.approx(fit["train_accuracy"])
    (folder / "fit.json").write_text(json.dumps({**fit, "train_accuracy": 2.0}))
    assert fit_accuracy(folder)["train_accuracy"] == 2.0  # made once, read back
    data = tmp_path / "data"
    shutil.copytree(json.loads((folder / "run.json").read_text())["data_root"], data)
    (data / train[0]["path"]).write_bytes(b"not the image the run trained on")
    changed = re.escape(train[0]["path"])
    with pytest.raises(EvaluationError, match=rf"(?s)train images of .*{changed}: content differs"):
        fit_accuracy(folder, data_dir=data, force=True)


def test_analyse_run_writes_fit_saliency_and_figure5(smoke_runs, tmp_path):
    """On the smoke model (32 px: post_relu is 1x1, so every heatmap is flat) the numbers
    can be checked exactly: a flat heatmap's energy in the brain is the brain's area."""
    from brainlib import evaluation, fit_and_saliency
    from brainlib.results import OPTIONAL_ARTIFACTS

    runs, _ = smoke_runs
    folder = tmp_path / "se"
    shutil.copytree(runs["se"].folder, folder)
    evaluation.evaluate_run(folder, n_resamples=50)
    result = fit_and_saliency.analyse_run(folder, seed=0)
    sal = json.loads((folder / "saliency.json").read_text())
    assert sal["cells"] == 1 and sal["images"] == len(evaluation.read_predictions(folder))
    assert sal["energy_in_brain"]["random"]["mean"] == pytest.approx(sal["brain_area"]["mean"])
    frame = evaluation.read_predictions(folder)
    accuracy = float((frame["class"] == frame["predicted"]).mean())
    # the deletion curves leave out the images with a blank heatmap in either method;
    # a flat 1x1 heatmap is blank where its ReLU'd sum is <= 0, which float rounding
    # decides, so how many are left differs between CPUs
    blank = [sal["energy_in_brain"][m]["blank_heatmaps"] for m in ("gradcam", "gradcam++")]
    n = sal["deletion_images"]
    assert sal["images"] - sum(blank) <= n <= sal["images"] - max(blank)
    for method, curve in sal["deletion"].items():
        assert curve["fraction"][0] == 0.0 and set(curve) >= {"accuracy", "area"}, method
        if n == sal["images"]:  # nothing blanked: the test accuracy again (<= 1 near-tie)
            assert abs(curve["accuracy"][0] - accuracy) <= 1 / n + 1e-9
        elif n:  # a share of n images
            assert curve["accuracy"][0] * n == pytest.approx(round(curve["accuracy"][0] * n))
    assert set(sal["deletion"]) == {"gradcam", "gradcam++", "random", "random_in_brain"}
    check = sal["randomisation"]
    assert set(check["stages"]) == {"top", "top+conv5", "random heatmaps"}
    assert check["stages"]["top"]["layers"] >= 9 and check["images"] == min(48, sal["images"])
    assert result["fit"] == json.loads((folder / "fit.json").read_text())
    made = ("fit.json", "saliency.json", "figures/figure5_gradcam.jpg")
    assert all((folder / a).is_file() for a in made)
    assert set(made) <= set(OPTIONAL_ARTIFACTS)  # export carries them
