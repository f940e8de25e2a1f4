"""Peak memory and wall time of each chapter's kernel, as a reader on Binder would run them.

mybinder.org gives a launch about 2 GB of memory (the kernel and the Jupyter server
together). Each chapter is executed with papermill in its own kernel, in order, into a
fresh build folder (nothing cached), on the profile the notebooks default to (``demo``);
the workflow appends a cell that reads the kernel's own peak resident set size
(``getrusage``'s ``ru_maxrss``) and removes it afterwards (brainlib.workflow.measure_peak).
Writes ``bench/chapter_memory.json`` and prints a Markdown table. Usage:

    python bench/chapter_memory.py [--profile demo] [--read _build/demo] [--out FILE]

``--read BUILD`` reads the peaks recorded in an earlier build's executed notebooks instead
of executing them again (they are recorded by every ``brainlib run``).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from brainlib import __version__, workflow  # noqa: E402
from brainlib.config import load_profile  # noqa: E402
from brainlib.runs import cpu_model  # noqa: E402

BINDER_LIMIT_MIB = 2048
SERVER_MIB = 150  # a Jupyter server's own resident memory, roughly, beside the kernel


def measure(profile: str) -> list[dict]:
    with tempfile.TemporaryDirectory() as build:
        steps = workflow.execute_notebooks(load_profile(profile), ROOT, build_dir=Path(build))
    return [{"chapter": s.name, "seconds": round(s.seconds, 1), "peak_mib": s.peak_mib}
            for s in steps]  # fmt: skip


def read(build: Path) -> list[dict]:
    out = []
    for name in workflow.NOTEBOOKS:
        executed = build / "notebooks" / f"{name}.ipynb"
        out.append({"chapter": name, "seconds": None,
                    "peak_mib": workflow.kernel_peak_mib(executed)})  # fmt: skip
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="demo")
    p.add_argument("--read", type=Path, help="a build folder whose notebooks were executed")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "chapter_memory.json")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    chapters = read(args.read) if args.read else measure(args.profile)
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    flags = next((ln for ln in lscpu.splitlines() if ln.startswith("Flags")), "")
    record = {
        "profile": args.profile, "brainlib": __version__, "date": time.strftime("%Y-%m-%d"),
        "machine": {"cpu": cpu_model(), "cores": len(__import__("os").sched_getaffinity(0)),
                    "avx512f": "avx512f" in flags, "python": platform.python_version()},
        "binder_limit_mib": BINDER_LIMIT_MIB, "server_allowance_mib": SERVER_MIB,
        "wall_seconds": None if args.read else round(time.perf_counter() - t0, 1),
        "chapters": chapters,
    }  # fmt: skip
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"| chapter | kernel peak (MiB) | with the server (MiB) | under {BINDER_LIMIT_MIB} MiB |")
    print("| --- | ---: | ---: | --- |")
    ok = True
    for c in chapters:
        peak = c["peak_mib"]
        total = None if peak is None else peak + SERVER_MIB
        fits = total is not None and total < BINDER_LIMIT_MIB
        ok &= fits
        shown = "not measured" if peak is None else f"{peak:,.0f}"
        print(f"| {c['chapter']} | {shown} | {total or 0:,.0f} | {'yes' if fits else 'NO'} |")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
