"""The grid as jobs, rehearsed: cells of the ``paper`` profile as separate jobs, one gather.

What ``publish.yml`` (and ``scripts/slurm_grid.sbatch``) do on many machines, here as
separate processes on this one, on the real data with stand-in backbone weights
(``brainlib stand-in-weights``: the ImageNet file cannot be downloaded here), each model
capped at ``--epochs``:

1. per cell (a training job): ``brainlib train --cell`` into a runs root of its own, then
   ``evaluate`` and ``analyse`` (training-set fit, Grad-CAM numbers, Figure 5) there;
2. the gather job: ``brainlib gather`` of every job's root into ``_build/paper/runs``, the
   external test set (``--external``), the duplicate flags (``audit --flags-dir``),
   ``export --out _build/paper/results`` and ``brainlib run --results`` (the book, whose
   Results page reads the gathered grid);
3. the serial path (``--serial``): one process trains the same cells into one root
   (``brainlib train --variant both``), and every cell's ``predictions.csv``, best
   weights file and history (but for its seconds column) are compared byte for byte
   with the gathered job's.

Each step is one process; its wall time and its peak resident memory are measured
(``os.wait4``: the largest single process of the step's tree, a notebook kernel
included, not a sum over processes that share pages; a child's peak starts from this
script's own RSS at the fork, about 30 MiB, which is why TensorFlow is imported here only
after the last step); the book's per-chapter kernel
peaks come from ``brainlib run``'s ``[done]`` lines. The trunk cache and each epoch are
read from the runs' ``log.txt`` and set against this machine's matmul ceiling
(``bench_training.matmul_gflops``; multiply-adds from ``bench_training.macs_split``).
``ONEDNN_MAX_CPU_ISA=AVX2`` in the environment holds oneDNN to AVX2, as a stand-in for
a hosted runner's CPU; the report says which.

Usage::

    python bench/grid_rehearsal.py --data-dir DIR [--external DIR] [--epochs 2]
        [--cells se-paper-seed42,base-paper-seed42] [--serial]
        [--out bench/grid_rehearsal.json] [--markdown bench/GRID_REHEARSAL.md]

``--render-only`` rewrites the markdown from the JSON. It replaces ``_build/paper`` and
``_build/grid-rehearsal`` of the checkout; run it on a quiet machine (another process on
the same cores slows every step) and from a clean clone (``--root CLONE`` with
``PYTHONPATH=CLONE``): a file edited while the jobs train gives them different
``git_commit`` values, and the gather refuses them, as it should. ``--resume`` keeps
the jobs measured before (``steps.jsonl``) and redoes the gather job.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # --root: another checkout (a clean clone)
WORK = ROOT / "_build" / "grid-rehearsal"
BUILD = ROOT / "_build" / "paper"
#: with --resume, the steps measured before (their names -> numbers), not run again
DONE: dict[str, dict] = {}


def timed(name: str, cmd: list[str], log_dir: Path, env: dict) -> dict:
    """Run ``cmd``; its wall time and the peak RSS of the largest process of its tree.

    Each step's numbers are appended to ``log_dir/steps.jsonl`` as it finishes; with
    ``--resume`` a step found there is not run again."""
    if name in DONE:
        print(f"[{time.strftime('%H:%M:%S')}] {name}: measured before, kept", flush=True)
        return DONE[name]
    log = log_dir / f"{name}.log"
    print(f"[{time.strftime('%H:%M:%S')}] {name}: {' '.join(cmd)}", flush=True)
    t0 = time.perf_counter()
    with open(log, "w", encoding="utf-8") as fh:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        tail = "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-15:])
        sys.exit(f"grid rehearsal: step {name} failed (exit {code}); {log}:\n{tail}")
    result = {"step": name, "seconds": round(seconds, 1), "peak_mib": round(usage.ru_maxrss / 1024)}
    with open(log_dir / "steps.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(result) + "\n")
    return result


def run_log(folder: Path) -> dict:
    """The trunk cache's seconds and images, and every epoch's seconds, from ``log.txt``."""
    text = (folder / "log.txt").read_text(encoding="utf-8")
    cache = re.search(r"of (\d+) training images \(\+ mirror images\) and (\d+) validation"
                      r".*computed in ([\d.]+)s", text)  # fmt: skip
    epochs = [float(m) for m in re.findall(r"epoch\s+\d+\s.*\s([\d.]+)s$", text, re.M)]
    out = {"epoch_seconds": epochs}
    if cache:
        out.update(train_images=int(cache[1]), val_images=int(cache[2]),
                   cache_seconds=float(cache[3]))  # fmt: skip
    return out


def chapter_peaks(run_log_path: Path) -> dict[str, dict]:
    steps = {}
    for line in run_log_path.read_text(encoding="utf-8").splitlines():
        m = re.search(r"\[done\]\s+(\S+) in ([\d.]+) s(?:, kernel peak ([\d,]+) MiB)?", line)
        if m:
            steps[m[1]] = {
                "seconds": float(m[2]),
                "kernel_peak_mib": int(m[3].replace(",", "")) if m[3] else None,
            }
    return steps


def ceiling_and_macs() -> dict:
    """This machine's fp32 matmul GFLOP/s, and the SE model's trunk and top multiply-adds."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import tensorflow as tf
    from bench_training import macs_split, matmul_gflops

    from brainlib.models import build_model

    trunk, top = macs_split(build_model("se", weights=None))
    return {"fp32_gflops": round(matmul_gflops(tf.float32), 1), "trunk_macs": trunk,
            "top_macs": top}  # fmt: skip


def shares(cell_log: dict, machine: dict) -> dict:
    """GFLOP/s of the trunk cache (forward, flipped copies too) and of an epoch of the top
    (forward + backward ~ 3 forward passes on the training images, 1 on validation), as
    shares of the matmul ceiling."""
    ceiling, out = machine["fp32_gflops"], {}
    if "cache_seconds" in cell_log:
        n = 2 * cell_log["train_images"] + cell_log["val_images"]
        flops = 2 * machine["trunk_macs"] * n
        out["cache_share"] = round(flops / cell_log["cache_seconds"] / 1e9 / ceiling, 3)
        epoch = statistics.median(cell_log["epoch_seconds"])
        flops = 2 * machine["top_macs"] * (3 * cell_log["train_images"] + cell_log["val_images"])
        out["epoch_share"] = round(flops / epoch / 1e9 / ceiling, 3)
    return out


def history_without_seconds(folder: Path) -> list[str]:
    return [ln.rsplit(",", 1)[0] for ln in (folder / "history.csv").read_text().splitlines()]


def compare(job: Path, serial: Path) -> dict:
    weights = "weights/best.weights.h5"
    return {
        "predictions": (job / "predictions.csv").read_bytes()
        == (serial / "predictions.csv").read_bytes(),
        "best_weights": (job / weights).read_bytes() == (serial / weights).read_bytes(),
        "history": history_without_seconds(job) == history_without_seconds(serial),
    }


def render(out: dict) -> str:
    m = out["machine"]
    held = f", oneDNN held to {m['onednn_max_cpu_isa']}" if m.get("onednn_max_cpu_isa") else ""
    lines = [
        "# The grid as jobs, rehearsed (paper profile, stand-in backbone weights)",
        "",
        "Written by `python bench/grid_rehearsal.py` (see its docstring); raw numbers in "
        f"`bench/{Path(out['json']).name}`.",
        "",
        *(f"- note: {n}" for n in out.get("notes", [])),
        f"- machine: {m['cpu_model']}, {m['cpu_count']} cores, ISA {', '.join(m['isa'])}"
        f"{held}; fp32 matmul ceiling {m['fp32_gflops']:.0f} GFLOP/s; {m['platform']}",
        f"- {out['date']}; cells {', '.join(out['cells'])}; each model capped at "
        f"{out['epochs']} epochs (stand-in weights: the protocol's code path and cost, "
        "not its result)",
        "- peak memory: the largest single process of each step's tree (`os.wait4`), not a "
        "sum over processes",
        "",
        "| job | step | wall time | peak memory |",
        "| --- | --- | ---: | ---: |",
    ]
    for job, steps in out["jobs"].items():
        for s in steps:
            lines.append(f"| {job} | {s['step']} | {s['seconds'] / 60:.1f} min | "
                         f"{s['peak_mib'] / 1024:.2f} GiB |")  # fmt: skip
        total = sum(s["seconds"] for s in steps)
        peak = max(s["peak_mib"] for s in steps)
        lines.append(f"| **{job}** | **all** | **{total / 60:.1f} min** | "
                     f"**{peak / 1024:.2f} GiB** |")  # fmt: skip
    lines += ["", "Within each training job (its `log.txt`):", "",
              "| cell | trunk cache | median epoch | trunk cache / epoch, share of ceiling |",
              "| --- | ---: | ---: | ---: |"]  # fmt: skip
    for cell, c in out["cells_log"].items():
        if "cache_seconds" not in c:
            continue
        lines.append(f"| {cell} | {c['cache_seconds'] / 60:.1f} min | "
                     f"{statistics.median(c['epoch_seconds']):.0f} s | "
                     f"{c['cache_share']:.0%} / {c['epoch_share']:.0%} |")  # fmt: skip
    lines += ["", "The book's chapters in the gather job (kernel peaks from `brainlib run`):", "",
              "| chapter | wall time | kernel peak |", "| --- | ---: | ---: |"]  # fmt: skip
    for name, c in out["chapters"].items():
        peak = f"{c['kernel_peak_mib']:,} MiB" if c["kernel_peak_mib"] else "-"
        lines.append(f"| {name} | {c['seconds']:.0f} s | {peak} |")
    if out.get("equal"):
        lines += ["", "Gathered jobs against the serial path (one process, one root), byte "
                  "for byte:", "", "| cell | predictions.csv | best weights | history |",
                  "| --- | --- | --- | --- |"]  # fmt: skip
        for cell, e in out["equal"].items():
            lines.append(f"| {cell} | {e['predictions']} | {e['best_weights']} | {e['history']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.environ.get("BRAINLIB_DATA_DIR"))
    ap.add_argument("--external", default=None, help="the external test set's folder")
    ap.add_argument("--epochs", type=int, default=2, help="epochs per model (a cap)")
    ap.add_argument("--cells", default="se-paper-seed42,base-paper-seed42")
    ap.add_argument("--serial", action="store_true", help="also the serial path, compared")
    ap.add_argument("--out", default="bench/grid_rehearsal.json")
    ap.add_argument("--markdown", default="bench/GRID_REHEARSAL.md")
    ap.add_argument("--render-only", action="store_true")
    ap.add_argument("--root", default=None, help="the checkout to rehearse (default: this one)")
    ap.add_argument(
        "--resume",
        action="store_true",
        help="keep the jobs measured before (steps.jsonl); redo the gather job",
    )
    args = ap.parse_args()
    global ROOT, WORK, BUILD
    if args.root:
        ROOT = Path(args.root).resolve()
        WORK, BUILD = ROOT / "_build" / "grid-rehearsal", ROOT / "_build" / "paper"
    if args.render_only:
        Path(args.markdown).write_text(render(json.loads(Path(args.out).read_text())))
        return
    if not args.data_dir:
        sys.exit("grid rehearsal: the real data is needed: --data-dir or $BRAINLIB_DATA_DIR")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    bin_dir = Path(sys.executable).parent
    brainlib = str(bin_dir / "brainlib")
    logs = WORK / "logs"
    if args.resume and (logs / "steps.jsonl").is_file():
        for line in (logs / "steps.jsonl").read_text(encoding="utf-8").splitlines():
            step = json.loads(line)
            if not step["step"].startswith(("gather", "external", "audit", "export", "book")):
                DONE[step["step"]] = step
    else:
        shutil.rmtree(WORK, ignore_errors=True)
    shutil.rmtree(BUILD, ignore_errors=True)
    logs.mkdir(parents=True, exist_ok=True)
    weights = WORK / "stand-in.h5"
    if not weights.is_file():
        subprocess.run([brainlib, "stand-in-weights", str(weights)], check=True, env=env)
    data = ["--data-dir", str(Path(args.data_dir).resolve())]
    sets = ["--profile", "paper", "--set", f"max_epochs={args.epochs}", "--set",
            f"weights={weights}"]  # fmt: skip
    cells = args.cells.split(",")
    jobs: dict[str, list] = {}
    for cell in cells:  # one training job per cell, each with a root of its own
        root = WORK / "jobs" / cell
        jobs[cell] = [
            timed(f"{cell}-train", [brainlib, "train", *sets, *data, "--cell", cell,
                                    "--runs", str(root)], logs, env),
            timed(f"{cell}-evaluate", [brainlib, "evaluate", *sets, *data, "--runs", str(root),
                                       "--partial"], logs, env),
            timed(f"{cell}-analyse", [brainlib, "analyse", *sets, *data, "--runs", str(root),
                                      "--partial"], logs, env),
        ]  # fmt: skip
        shutil.rmtree(root / "paper" / "trunk-cache", ignore_errors=True)
    gathered = BUILD / "runs"
    steps = [timed("gather", [brainlib, "gather", *(str(WORK / "jobs" / c) for c in cells),
                              *sets, "--into", str(gathered), "--partial"], logs, env)]  # fmt: skip
    if args.external:
        steps.append(timed("external", [brainlib, "evaluate", *sets, *data, "--runs",
                                        str(gathered), "--partial", "--external", args.external,
                                        "--class-map", "no_tumor=normal", "--name",
                                        "brain-tumor-classification-mri"], logs, env))  # fmt: skip
    steps += [
        timed("audit", [brainlib, "audit", *data[1:], *sets, "--flags-dir",
                        str(gathered / "paper" / "data")], logs, env),
        timed("export", [brainlib, "export", *sets, "--runs", str(gathered), "--partial",
                         "--out", str(BUILD / "results"), "--replace"], logs, env),
        timed("book", [brainlib, "run", "--profile", "paper", *data, "--weights", str(weights),
                       "--set", f"max_epochs={args.epochs}", "--results",
                       str(BUILD / "results" / "paper")], logs, env),
    ]  # fmt: skip
    jobs["gather job"] = steps
    equal = {}
    if args.serial:
        serial = WORK / "serial"
        variants = sorted({c.split("-")[0] for c in cells})
        jobs["serial path"] = [
            timed("serial-train", [brainlib, "train", *sets, *data, "--variant",
                                   "both" if len(variants) > 1 else variants[0], "--runs",
                                   str(serial)], logs, env),
            timed("serial-evaluate", [brainlib, "evaluate", *sets, *data, "--runs", str(serial),
                                      "--partial"], logs, env),
        ]  # fmt: skip
        for cell in cells:
            job = WORK / "jobs" / cell / "paper" / cell
            if (serial / "paper" / cell).is_dir():
                equal[cell] = compare(job, serial / "paper" / cell)
    # imported only now: a child's peak RSS (ru_maxrss) starts from its parent's RSS at the
    # fork, so the parent stays small (no TensorFlow) while it starts the steps
    from brainlib.models import cpu_info

    info = cpu_info()
    machine = {"cpu_model": info["model"], "isa": info["isa"], "cpu_count": os.cpu_count(),
               "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA"),
               "platform": platform.platform(), **ceiling_and_macs()}  # fmt: skip
    cells_log = {}
    for cell in cells:
        c = run_log(WORK / "jobs" / cell / "paper" / cell)
        cells_log[cell] = {**c, **shares(c, machine)}
    out = {"json": args.out, "date": time.strftime("%Y-%m-%d"), "epochs": args.epochs,
           "cells": cells, "machine": machine, "jobs": jobs, "cells_log": cells_log,
           "chapters": chapter_peaks(BUILD / "run.log"), "equal": equal}  # fmt: skip
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    Path(args.markdown).write_text(render(out))
    print(render(out))


if __name__ == "__main__":
    main()
