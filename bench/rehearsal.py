"""A full-scale rehearsal of the ``paper`` profile: real data, 224 px, both models, the book.

Runs ``brainlib run --profile paper`` end to end (papermill, then Jupyter Book)
on the 3,096 real images, with the backbone weights read from a stand-in file
in the layout of Keras' ResNet50V2 no-top file (``brainlib stand-in-weights``:
seeded random weights; the ImageNet file cannot be downloaded here). It
measures, on this machine:

- the wall time of every notebook and of the book build (the pipeline's
  ``run.log``), and within training: the trunk cache and every epoch of each
  model (the run folders' ``log.txt``);
- the peak resident memory of the whole process tree (``brainlib run`` and
  the notebook kernels it starts), sampled every 0.5 s.

Random backbone weights give the top random features, so the paper's early
stopping need not fire where it would on ImageNet features; ``--epochs``
caps each model's training and the total is extrapolated to the paper's 27
epochs per model (the paper's Figure 1 stops there) from the median epoch
time. The report says which numbers are measured and which extrapolated.

Usage::

    python bench/rehearsal.py [--epochs 3] [--data-dir DIR] [--out bench/rehearsal.json]
        [--markdown bench/REHEARSAL.md]

``--render-only`` rewrites the markdown from the JSON.
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
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
PAPER_EPOCHS = 27  # the paper's training curves (Figure 1) end at epoch 27


def peak_rss(proc: subprocess.Popen, stop: threading.Event, out: dict) -> None:
    """The largest sum of RSS over ``proc`` and its descendants, every 0.5 s."""
    top = psutil.Process(proc.pid)
    while not stop.is_set():
        try:
            tree = [top, *top.children(recursive=True)]
            rss = sum(p.memory_info().rss for p in tree if p.is_running())
            out["peak_rss"] = max(out.get("peak_rss", 0), rss)
        except psutil.Error:
            pass
        stop.wait(0.5)


def parse_pipeline_log(path: Path) -> dict[str, float]:
    steps = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        m = re.search(r"\[done\]\s+(\S+) in ([\d.]+) s", line)
        if m:
            steps[m[1]] = float(m[2])
    return steps


def parse_run_log(path: Path) -> dict:
    epochs, cache, cache_gib, cache_dir = [], None, None, None
    text = path.read_text(encoding="utf-8")
    for line in text.splitlines():
        m = re.search(r"epoch\s+\d+\s.*\s([\d.]+)s$", line)
        if m:
            epochs.append(float(m[1]))
        m = re.search(r"computed in ([\d.]+)s", line)
        if m:
            cache = float(m[1])
        m = re.search(r", ([\d.]+) GiB at (\S+),", line)
        if m:
            cache_gib, cache_dir = float(m[1]), m[2]
    mapped = "memory-mapped" in text
    return {"epoch_seconds": epochs, "cache_seconds": cache, "cache_gib": cache_gib,
            "cache_dir": cache_dir, "memory_mapped": mapped}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3, help="epochs per model (then extrapolated)")
    ap.add_argument("--data-dir", default=os.environ.get("BRAINLIB_DATA_DIR"))
    ap.add_argument("--out", default="bench/rehearsal.json")
    ap.add_argument("--markdown", default="bench/REHEARSAL.md")
    ap.add_argument("--render-only", action="store_true")
    args = ap.parse_args()
    if args.render_only:
        Path(args.markdown).write_text(render(json.loads(Path(args.out).read_text())))
        return
    if not args.data_dir:
        sys.exit("rehearsal: the real data is needed: --data-dir or $BRAINLIB_DATA_DIR")
    from brainlib.models import cpu_info

    build = ROOT / "_build" / "paper"
    shutil.rmtree(build, ignore_errors=True)
    weights = ROOT / "_build" / "stand-in" / "resnet50v2_notop_stand-in.h5"
    brainlib = Path(sys.executable).with_name("brainlib")
    subprocess.run([str(brainlib), "stand-in-weights", str(weights)], check=True)
    cmd = [str(brainlib), "run", "--profile", "paper", "--data-dir", args.data_dir,
           "--weights", str(weights), "--set", f"max_epochs={args.epochs}"]  # fmt: skip
    print(" ".join(cmd), flush=True)
    mem: dict = {}
    stop = threading.Event()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT)
    watcher = threading.Thread(target=peak_rss, args=(proc, stop, mem), daemon=True)
    watcher.start()
    rc = proc.wait()
    stop.set()
    watcher.join()
    total = time.perf_counter() - t0
    if rc != 0:
        sys.exit(f"rehearsal: brainlib run failed (exit {rc})")

    steps = parse_pipeline_log(build / "run.log")
    book = total - sum(steps.values())
    models = {}
    for variant in ("se", "base"):
        models[variant] = parse_run_log(
            build / "runs" / "paper" / f"{variant}-paper-seed42" / "log.txt"
        )
    info = cpu_info()
    out = {
        "machine": {
            "cpu_model": info["model"],
            "isa": info["isa"],
            "native_bf16": info["native_bf16"],
            "cpu_count": os.cpu_count(),
            "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "platform": platform.platform(),
        },
        "command": " ".join(Path(c).name if c == str(brainlib) else c for c in cmd),
        "epochs_per_model": args.epochs,
        "total_seconds": round(total, 1),
        "notebook_seconds": steps,
        "book_and_overhead_seconds": round(book, 1),
        "peak_rss_gib": round(mem.get("peak_rss", 0) / 2**30, 2),
        "models": models,
    }
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    Path(args.markdown).write_text(render(out))
    print(render(out))


def extrapolate(out: dict) -> dict:
    """Minutes at the paper's 27 epochs per model: measured stages + 27 median epochs each."""
    per_model = {
        v: statistics.median(m["epoch_seconds"][1:] or m["epoch_seconds"])
        for v, m in out["models"].items()
    }
    measured_epochs = sum(sum(m["epoch_seconds"]) for m in out["models"].values())
    extra = sum(PAPER_EPOCHS * s for s in per_model.values()) - measured_epochs
    return {"median_epoch_seconds": per_model, "total_seconds": out["total_seconds"] + extra}


def render(out: dict) -> str:
    m, steps, ex = out["machine"], out["notebook_seconds"], extrapolate(out)
    cache = next(v["cache_seconds"] for v in out["models"].values() if v["cache_seconds"])
    first = out["models"]["se"]
    lines = [
        "# Rehearsal of the paper profile (real data, 224 px, stand-in backbone weights)",
        "",
        "Written by `python bench/rehearsal.py` (see its docstring); raw numbers in "
        "`bench/rehearsal.json`.",
        "",
        f"- machine: {m['cpu_model']}, {m['cpu_count']} cores, {m['memory_gib']} GiB, "
        f"ISA {', '.join(m['isa'])} (native bfloat16: {m['native_bf16']}), no GPU",
        f"- command: `{out['command']}`",
        "- backbone weights: `brainlib stand-in-weights` (seeded random weights in the "
        "ImageNet no-top file's layout; the ImageNet file cannot be downloaded here), so "
        "the accuracies of this run mean nothing; its times are the protocol's",
        f"- each model trained {out['epochs_per_model']} epochs (capped), then extrapolated "
        f"to the paper's {PAPER_EPOCHS} from the median epoch time",
        "",
        "| stage | wall time | measured or extrapolated |",
        "| --- | --- | --- |",
    ]
    for name, secs in steps.items():
        lines.append(f"| notebook {name} | {secs / 60:.1f} min | measured |")
    lines += [
        f"| book build (jupyter-book) and start-up | {out['book_and_overhead_seconds'] / 60:.1f} "
        "min | measured |",
        f"| within 03_training: trunk cache, once for both models | {cache / 60:.1f} min "
        f"({first['cache_gib']:.2f} GiB, "
        f"{'memory-mapped from disk' if first['memory_mapped'] else 'in memory'}) | measured |",
    ]
    for v, secs in ex["median_epoch_seconds"].items():
        lines.append(f"| within 03_training: one epoch of the {v} model (median) | {secs:.1f} s "
                     "| measured |")  # fmt: skip
    lines += [
        f"| **whole run as measured** ({out['epochs_per_model']} epochs per model) | "
        f"**{out['total_seconds'] / 60:.1f} min** | measured |",
        f"| **whole run at {PAPER_EPOCHS} epochs per model** | "
        f"**{ex['total_seconds'] / 60:.1f} min** | extrapolated |",
        "",
        f"Peak resident memory of the process tree (`brainlib run` and its notebook kernels): "
        f"**{out['peak_rss_gib']:.2f} GiB**.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
