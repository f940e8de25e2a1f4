"""Whole-network training throughput (the from-scratch real-data path) at 64, 128 and 224 px.

Every layer of the SE model trains (``trainable_from = "all"``, random
weights), as in the real-data profiles that cannot download ImageNet weights.
For each image size and precision (float32, and mixed bfloat16 on a CPU or
float16 on a GPU) it times ``fit`` on in-memory batches (no JPEG decoding:
this measures the network, not the input pipeline) and reports

- images per second and seconds per epoch of 2,478 images (the paper split's
  training set);
- achieved GFLOP/s, counting 2 FLOPs per multiply-add and a training step as
  three forward passes (forward, and a backward pass of about twice that);
- the share of the machine's ceiling for that precision: GFLOP/s of a large
  matmul (4096 x 4096) in the same dtype, measured in the same process.

Usage::

    python bench/bench_whole_network.py [--sizes 64,128,224] [--steps 12] [--batch 16]
        [--out bench/whole_network.json] [--markdown bench/WHOLE_NETWORK.md]

``--render-only`` rewrites the markdown from the JSON. Run it on a quiet
machine: another process on the same cores halves the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_training import layer_macs, matmul_gflops

from brainlib.models import build_model, cpu_info, dtype_policy, precision_policy

TRAIN_IMAGES = 2478  # the paper split's training set


def whole_macs(model) -> int:
    return sum(layer_macs(layer) for layer in model.layers)


def time_training(
    size: int, mixed: bool, batch: int, steps: int, seed: int = 0, jit: bool = False
) -> dict:
    """Median seconds per step of whole-network training, after two warm-up steps."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    policy = precision_policy(mixed)
    with dtype_policy(policy):
        model = build_model("se", weights="none", input_shape=(size, size, 3), trainable_from=None)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy", jit_compile=jit
    )
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (batch, size, size, 3)).astype("float32")
    y = keras.utils.to_categorical(rng.integers(0, 4, batch), 4)
    times = []
    for i in range(steps + 2):
        t = time.perf_counter()
        model.train_on_batch(x, y)
        if i >= 2:
            times.append(time.perf_counter() - t)
    step = statistics.median(times)
    macs = whole_macs(model)
    ips = batch / step
    gflops = ips * 3 * 2 * macs / 1e9
    return {
        "size": size,
        "policy": policy,
        "batch": batch,
        "xla": jit,
        "step_seconds": [round(t, 4) for t in times],
        "median_step_seconds": round(step, 4),
        "images_per_second": round(ips, 2),
        "epoch_seconds_2478": round(TRAIN_IMAGES / ips, 1),
        "gmacs_per_image": round(macs / 1e9, 3),
        "gflops_achieved": round(gflops, 1),
    }


def render_markdown(out: dict) -> str:
    m = out["machine"]
    lines = [
        "# Whole-network training (from random weights)",
        "",
        "Written by `python bench/bench_whole_network.py` (see its docstring); raw numbers in",
        f"`{out['json']}`. One run, one machine:",
        "",
        f"- machine: {m['cpu_model']}, {m['cpu_count']} cores, native bfloat16: "
        f"{m['native_bf16']}, ISA flags: {', '.join(m['isa'])}; GPUs: {m['gpus'] or 'none'}",
        f"- environment: ONEDNN_MAX_CPU_ISA={m.get('onednn_max_cpu_isa') or '(unset)'}",
        f"- versions: TensorFlow {out['versions']['tensorflow']}, Keras {out['versions']['keras']}",
        f"- median of {out['steps']} steps after 2 warm-up steps, "
        "in-memory batches (the network only, no JPEG decoding)",
        "- FLOPs: 2 per multiply-add; a training step = 3 forward passes",
        "",
        "Machine ceiling (a 4096x4096 matmul): "
        + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in out["ceiling_gflops"].items())
        + ".",
        "",
        "| size | precision | batch | XLA | GMAC/image | images/s | s per epoch (2,478 images) "
        "| GFLOP/s | share of its ceiling |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in out["results"]:
        key = "fp32" if r["policy"] == "float32" else "bf16"
        share = r["gflops_achieved"] / out["ceiling_gflops"][key]
        lines.append(
            f"| {r['size']} | {r['policy']} | {r['batch']} | {'on' if r.get('xla') else 'off'} | "
            f"{r['gmacs_per_image']:.3f} | "
            f"{r['images_per_second']:.1f} | {r['epoch_seconds_2478']:.0f} | "
            f"{r['gflops_achieved']:.0f} | {share:.0%} |"
        )
    lines.append("")
    lines += [f"- {note}" for note in out.get("notes", [])]
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="64,128,224")
    ap.add_argument("--precisions", default="fp32,mixed", help="fp32, mixed or both")
    ap.add_argument("--batch", default="16,32", help="batch sizes, comma-separated")
    ap.add_argument("--xla", default="off", help="off, on or both (XLA jit_compile)")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--out", default="bench/whole_network.json")
    ap.add_argument("--markdown", default="bench/WHOLE_NETWORK.md")
    ap.add_argument("--render-only", action="store_true")
    args = ap.parse_args()
    if args.render_only:
        Path(args.markdown).write_text(render_markdown(json.loads(Path(args.out).read_text())))
        return
    info = cpu_info()
    out = {
        "json": args.out,
        "machine": {
            "platform": platform.platform(),
            "cpu_model": info["model"],
            "isa": info["isa"],
            "native_bf16": info["native_bf16"],
            "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA"),
            "cpu_count": os.cpu_count(),
            "gpus": [g.name for g in tf.config.list_physical_devices("GPU")],
        },
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
        "steps": args.steps,
        "ceiling_gflops": {
            "fp32": round(matmul_gflops(tf.float32), 1),
            "bf16": round(matmul_gflops(tf.bfloat16), 1),
        },
        "results": [],
    }
    print(json.dumps(out["machine"]), out["ceiling_gflops"], flush=True)
    xla = {"off": (False,), "on": (True,), "both": (False, True)}[args.xla]
    for size in (int(s) for s in args.sizes.split(",")):
        for prec in args.precisions.split(","):
            for batch in (int(b) for b in args.batch.split(",")):
                for jit in xla:
                    r = time_training(size, prec == "mixed", batch, args.steps, jit=jit)
                    out["results"].append(r)
                    print(json.dumps({k: v for k, v in r.items() if k != "step_seconds"}),
                          flush=True)  # fmt: skip
                    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    Path(args.markdown).write_text(render_markdown(out))
    print(render_markdown(out))


if __name__ == "__main__":
    main()
