"""Training throughput at 224x224: naive baseline vs brainlib's exact and fastest paths.

Measures, in one run on one machine, training images per second for

(a) a naive baseline written as typical public notebooks do:
    ``keras.utils.image_dataset_from_directory`` and the whole SE model (with a
    ``RandomFlip`` layer and ResNet50V2 preprocessing) inside ``fit``;
(b) brainlib's fastest exact path: the frozen trunk's outputs for every image
    and its mirror image cached once, fp32, each epoch training only the top;
    its predictions must equal the baseline model's within 1e-4 on the same weights;
(c) brainlib's fastest path overall: (b) with bfloat16 mixed precision (CPU)
    or float16 (GPU) and XLA ``jit_compile``; its test predictions must agree
    with the fp32 path on at least 99% of images.

Also computed: multiply-adds per image of the trunk and the trainable top
(from the layer shapes), the bound that skipping the trunk gives,
``(trunk + 3 top) / (3 top)``, and the machine's ceiling (GFLOP/s of a large
matmul, fp32 and bf16), against the GFLOP/s each path achieves.

Usage: ``python bench/bench_training.py [--images 320] [--epochs 3] [--out bench/results.json]``
(data: ``$BRAINLIB_DATA_DIR`` if set, else phantoms at 256 px).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf

from brainlib.config import CLASSES, load_profile
from brainlib.data import load_dataset
from brainlib.data.tfdata import FeatureArrays, image_dataset, preprocess, training_stream
from brainlib.models import (
    FREEZE_BOUNDARY,
    build_model,
    dtype_policy,
    precision_policy,
    trunk_and_top,
)
from brainlib.trunk_cache import trunk_features

SIZE = 224
BATCH = 16


# ------------------------------------------------------------------------- FLOP count
def layer_macs(layer) -> int:
    """Multiply-adds of one forward pass of ``layer`` for one image."""
    if isinstance(layer, keras.layers.Conv2D):
        _, h, w, cout = layer.output.shape
        kh, kw = layer.kernel_size
        cin = layer.input.shape[-1]
        return h * w * kh * kw * cin * cout
    if isinstance(layer, keras.layers.Dense):
        return int(np.prod(layer.kernel.shape))
    return 0


def macs_split(model) -> tuple[int, int]:
    names = [layer.name for layer in model.layers]
    cut = names.index(FREEZE_BOUNDARY)
    trunk = sum(layer_macs(layer) for layer in model.layers[:cut])
    top = sum(layer_macs(layer) for layer in model.layers[cut:])
    return trunk, top


def matmul_gflops(dtype, n: int = 4096, reps: int = 6) -> float:
    a = tf.cast(tf.random.normal((n, n)), dtype)

    @tf.function
    def mm():
        return tf.matmul(a, a)

    mm().numpy()
    t = time.perf_counter()
    for _ in range(reps):
        r = mm()
    r.numpy()
    return 2 * n**3 / ((time.perf_counter() - t) / reps) / 1e9


# ---------------------------------------------------------------------------- timing
class EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self.t = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self.t)


def timed_fit(model, stream, steps, epochs) -> list[float]:
    timer = EpochTimer()
    model.fit(stream, steps_per_epoch=steps, epochs=epochs + 1, callbacks=[timer], verbose=0)
    return timer.times[1:]  # the first epoch is warm-up (tracing, XLA compile)


def subset_folder(records, n: int) -> Path:
    """A Kaggle-layout folder of symlinks to ``n`` images, class-balanced."""
    root = Path(tempfile.mkdtemp(prefix="bench-data-"))
    per_class = n // len(CLASSES)
    for cls in CLASSES:
        (root / cls).mkdir()
        for r in [r for r in records if r.label == cls][:per_class]:
            (root / cls / Path(r.relpath).name).symlink_to(r.path.resolve())
    return root


# ------------------------------------------------------------------------------ paths
def naive_baseline(folder: Path, epochs: int, seed: int):
    """(a): as public notebooks do it."""
    keras.utils.set_random_seed(seed)
    ds = keras.utils.image_dataset_from_directory(
        folder, image_size=(SIZE, SIZE), batch_size=BATCH, label_mode="categorical", seed=seed
    )
    ds = ds.prefetch(tf.data.AUTOTUNE)
    core = build_model("se", weights=None)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.RandomFlip("horizontal")(inputs)
    x = keras.applications.resnet_v2.preprocess_input(x)
    model = keras.Model(inputs, core(x))
    model.compile(keras.optimizers.Adam(1e-4), "categorical_crossentropy", metrics=["accuracy"])
    steps = len(ds)
    times = timed_fit(model, ds.repeat(), steps, epochs)
    return core, times, steps * BATCH


def fast_path(records, epochs: int, seed: int, mixed: bool, jit: bool, weights_from=None):
    """(b) and (c): cached trunk, top only, optionally bf16/fp16 and XLA.

    Seeds are set, but not TensorFlow's op determinism, which turns XLA off.
    """
    keras.utils.set_random_seed(seed)
    policy = precision_policy(mixed)
    with dtype_policy(policy):
        model = build_model("se", weights=None)
    if weights_from is not None:
        model.set_weights(weights_from.get_weights())
    trunk, top = trunk_and_top(model)
    cached = image_dataset(
        [str(r.path) for r in records], [CLASSES.index(r.label) for r in records], SIZE
    )
    t0 = time.perf_counter()
    f = trunk_features(trunk, cached, 32)
    f_flip = trunk_features(trunk, cached, 32, flip=True)
    cache_seconds = time.perf_counter() - t0
    y = np.array([CLASSES.index(r.label) for r in records])
    feats = FeatureArrays(f, f_flip, y)
    n = len(records)
    stream, steps = training_stream(feats, n, BATCH, seed, 0, epochs + 1, features=True)
    top.compile(
        keras.optimizers.Adam(1e-4),
        "categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=jit,
    )
    times = timed_fit(top, stream, steps, epochs)
    return model, trunk, top, times, steps * BATCH, cache_seconds, f.nbytes


def predict_images(model, records, batch=32) -> np.ndarray:
    cached = image_dataset([str(r.path) for r in records], [0] * len(records), SIZE)
    return np.concatenate(
        [model(preprocess(x), training=False).numpy() for x, _ in cached.batch(batch)]
    )


def render_markdown(out: dict) -> str:
    """bench/RESULTS.md from the measured numbers (nothing typed by hand)."""
    a, b, c = out["a_naive"], out["b_exact"], out["c_fastest"]
    m = out["macs_per_image"]
    ceiling = out["ceiling_gflops"]
    lines = [
        "# Training throughput at 224x224",
        "",
        "Written by `python bench/bench_training.py` (see its docstring); raw numbers in",
        "`bench/results.json`. One run, one machine:",
        "",
        f"- machine: {out['machine']['platform']}, {out['machine']['cpu_count']} cores, "
        f"GPUs: {out['machine']['gpus'] or 'none'}",
        f"- versions: TensorFlow {out['versions']['tensorflow']}, "
        f"Keras {out['versions']['keras']}, NumPy {out['versions']['numpy']}",
        f"- data: {out['train_images']} training images of {out['data']}, batch "
        f"{out['batch_size']}, {out['measured_epochs']} measured epochs after one warm-up epoch "
        "(median reported)",
        "",
        "## The bound",
        "",
        f"Multiply-adds per image (from the layer shapes): frozen trunk {m['trunk'] / 1e9:.3f} G, "
        f"trainable top {m['top'] / 1e9:.3f} G, whole model {m['total'] / 1e9:.3f} G.",
        "Training costs the trunk's forward pass plus about three forward passes of the top",
        "(forward, and a backward pass of about twice the forward). Skipping the trunk bounds",
        f"the speed-up at (trunk + 3 top) / (3 top) = **{out['bound_b_over_a']:.3f}x**.",
        "",
        f"Machine ceiling (a 4096x4096 matmul): {ceiling['fp32']:.0f} GFLOP/s fp32, "
        f"{ceiling['bf16']:.0f} GFLOP/s bf16.",
        "",
        "## Results",
        "",
        "| path | images/s | median epoch (s) | GFLOP/s achieved | share of fp32 ceiling |",
        "| --- | --- | --- | --- | --- |",
    ]
    for label, r in (
        ("(a) naive baseline (`image_dataset_from_directory`, whole model in `fit`)", a),
        (f"(b) exact: cached trunk, fp32 (XLA: {b['jit_compile']})", b),
        (f"(c) fastest: cached trunk, {c['policy']} (XLA: {c['jit_compile']})", c),
    ):
        lines.append(
            f"| {label} | {r['images_per_second']:.2f} | {r['median_epoch_seconds']:.2f} | "
            f"{r['gflops_achieved']:.0f} | {r['gflops_achieved'] / ceiling['fp32']:.0%} |"
        )
    lines += [
        "",
        f"- **b/a = {out['ratio_b_over_a']:.2f}x**, {out['b_share_of_bound']:.0%} of the "
        f"{out['bound_b_over_a']:.2f}x bound (target: at least 90%).",
        f"- (b) predictions on the same weights against the end-to-end model: max |difference| "
        f"{out['b_max_abs_prediction_difference']:.2e} (target: 1e-4).",
        f"- (b) one-off cost: the trunk's outputs for every image and its mirror image took "
        f"{b['trunk_cache_seconds']:.1f} s and {b['trunk_cache_bytes'] / 2**20:.0f} MiB here "
        "(7x7x1024 float32 per image: 196 KiB; 0.95 GiB for the 2,478 training images and "
        "their flips); the other XLA setting ran an epoch in "
        f"{b['other_variant_median_epoch_seconds']:.2f} s.",
        f"- **c/a = {out['ratio_c_over_a']:.2f}x** (target: 3x); (c) agrees with the fp32 path "
        f"on {out['c_agreement_with_fp32']:.1%} of {out.get('test_images', 'the')} test images "
        f"(max probability difference {out['c_max_abs_probability_difference']:.1e}); the other "
        f"XLA setting ran an epoch in {c['other_variant_median_epoch_seconds']:.2f} s.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=320, help="training images per epoch")
    ap.add_argument("--epochs", type=int, default=3, help="measured epochs (after 1 warm-up)")
    ap.add_argument("--test-images", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="bench/results.json")
    ap.add_argument("--markdown", default="bench/RESULTS.md")
    ap.add_argument("--render-only", action="store_true", help="rewrite --markdown from --out")
    args = ap.parse_args()
    if args.render_only:
        Path(args.markdown).write_text(render_markdown(json.loads(Path(args.out).read_text())))
        return

    profile = (
        load_profile("paper", strict_data=False)
        if os.environ.get("BRAINLIB_DATA_DIR")
        else (
            load_profile(
                "demo", phantom_size=256, phantoms_per_class=(args.images + args.test_images) // 4
            )
        )
    )
    ds = load_dataset(profile, allow_mismatch=True)
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(ds.records))
    pool = [ds.records[i] for i in order]
    per_class = args.images // len(CLASSES)
    train_recs = [r for c in CLASSES for r in [r for r in pool if r.label == c][:per_class]]
    test_recs = [r for r in pool if r not in set(train_recs)][: args.test_images]

    out: dict = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "gpus": [g.name for g in tf.config.list_physical_devices("GPU")],
        },
        "versions": {
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "numpy": np.__version__,
        },
        "data": str(ds.root),
        "image_size": SIZE,
        "batch_size": BATCH,
        "train_images": len(train_recs),
        "measured_epochs": args.epochs,
        "test_images": len(test_recs),
    }
    print(json.dumps(out, indent=2), flush=True)
    out["ceiling_gflops"] = {"fp32": matmul_gflops(tf.float32), "bf16": matmul_gflops(tf.bfloat16)}
    print("matmul ceiling GFLOP/s:", out["ceiling_gflops"], flush=True)

    # (a)
    folder = subset_folder(train_recs, len(train_recs))
    base_model, times_a, n_a = naive_baseline(folder, args.epochs, args.seed)
    trunk_macs, top_macs = macs_split(base_model)
    out["macs_per_image"] = {"trunk": trunk_macs, "top": top_macs, "total": trunk_macs + top_macs}
    # training cost per image: trunk forward + top forward + top backward (~2x forward)
    cost_a = 2 * (trunk_macs + 3 * top_macs)  # FLOPs
    cost_b = 2 * (3 * top_macs)
    out["bound_b_over_a"] = cost_a / cost_b
    print(
        f"MACs/image trunk {trunk_macs / 1e9:.3f} G, top {top_macs / 1e9:.3f} G; "
        f"bound b/a = {out['bound_b_over_a']:.3f}",
        flush=True,
    )

    def summarise(name, times, n, flops_per_image):
        med = statistics.median(times)
        ips = n / med
        out[name] = {
            "epoch_seconds": [round(t, 3) for t in times],
            "median_epoch_seconds": round(med, 3),
            "images_per_second": round(ips, 2),
            "gflops_achieved": round(ips * flops_per_image / 1e9, 1),
        }
        print(name, out[name], flush=True)

    summarise("a_naive", times_a, n_a, cost_a)

    # (b) exact: fp32, fast path, same weights as the baseline model
    candidates = {}
    for jit in (False, True):
        model_b, trunk_b, top_b, times_b, n_b, cache_s, nbytes = fast_path(
            train_recs, args.epochs, args.seed, mixed=False, jit=jit, weights_from=None
        )
        candidates[jit] = (model_b, trunk_b, top_b, times_b, n_b, cache_s, nbytes)
    # equality of predictions on the same weights: full model vs trunk+top
    check_model, check_trunk, check_top = candidates[False][:3]
    x_imgs = predict_images(check_model, test_recs[:64])
    via_top = np.concatenate(
        [
            check_top(check_trunk(preprocess(x), training=False), training=False).numpy()
            for x, _ in image_dataset([str(r.path) for r in test_recs[:64]], [0] * 64, SIZE).batch(
                32
            )
        ]
    )
    out["b_max_abs_prediction_difference"] = float(np.abs(x_imgs - via_top).max())
    best_jit = min(candidates, key=lambda j: statistics.median(candidates[j][3]))
    model_b, trunk_b, top_b, times_b, n_b, cache_s, nbytes = candidates[best_jit]
    summarise("b_exact", times_b, n_b, cost_b)
    out["b_exact"].update(
        jit_compile=best_jit,
        trunk_cache_seconds=round(cache_s, 2),
        trunk_cache_bytes=2 * nbytes,
        other_variant_median_epoch_seconds=round(statistics.median(candidates[not best_jit][3]), 3),
    )

    # (c) fastest overall: mixed precision with and without XLA; the faster one counts
    c_candidates = {}
    for jit in (False, True):
        model_c, _, _, times_c, n_c, cache_c, _ = fast_path(
            train_recs, args.epochs, args.seed, mixed=True, jit=jit
        )
        c_candidates[jit] = (model_c, times_c, n_c, cache_c)
    best_c = min(c_candidates, key=lambda j: statistics.median(c_candidates[j][1]))
    model_c, times_c, n_c, cache_c = c_candidates[best_c]
    summarise("c_fastest", times_c, n_c, cost_b)
    out["c_fastest"].update(
        policy=precision_policy(True),
        jit_compile=best_c,
        trunk_cache_seconds=round(cache_c, 2),
        other_variant_median_epoch_seconds=round(statistics.median(c_candidates[not best_c][1]), 3),
    )
    model_c.set_weights(
        [w.astype(v.dtype) for w, v in zip(model_b.get_weights(), model_c.weights, strict=True)]
    )
    p32 = predict_images(model_b, test_recs)
    p16 = predict_images(model_c, test_recs)
    out["c_agreement_with_fp32"] = float((p32.argmax(1) == p16.argmax(1)).mean())
    out["c_max_abs_probability_difference"] = float(np.abs(p32 - p16.astype(np.float32)).max())

    a = out["a_naive"]["images_per_second"]
    out["ratio_b_over_a"] = round(out["b_exact"]["images_per_second"] / a, 3)
    out["ratio_c_over_a"] = round(out["c_fastest"]["images_per_second"] / a, 3)
    out["b_share_of_bound"] = round(out["ratio_b_over_a"] / out["bound_b_over_a"], 3)
    print(
        f"b/a = {out['ratio_b_over_a']:.2f} (bound {out['bound_b_over_a']:.2f}, "
        f"{100 * out['b_share_of_bound']:.0f}% of it); c/a = {out['ratio_c_over_a']:.2f}; "
        f"c agrees with fp32 on {100 * out['c_agreement_with_fp32']:.1f}% "
        f"of {len(test_recs)} test images",
        flush=True,
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    Path(args.markdown).write_text(render_markdown(out))


if __name__ == "__main__":
    main()
