"""ResNet50V2 with and without squeeze-and-excitation, as in the paper.

``build_model("se")`` and ``build_model("base")`` return one flat functional
graph: the backbone's layers (``post_relu``, ``conv5_block1_preact_bn``, ...)
are layers of the returned model, reachable by name, which Grad-CAM and the
frozen-trunk fast path rely on.

The head, after the backbone (the paper, "Model development and architecture"):

1. the SE block (SE model only), :func:`se_block`;
2. three Conv2D layers of 32, 64 and 128 filters (3x3, ReLU), each followed by
   BatchNormalization and MaxPooling2D. The paper gives neither padding;
   ``"same"`` is the only choice that works: at 224 the backbone's map is 7x7
   and three valid 3x3 convolutions with pooling would shrink it below 1x1;
3. GlobalAveragePooling2D (the paper is silent between flatten and global
   pooling). At 224 the map is 1x1x128 after the three poolings (7 -> 4 -> 2
   -> 1), where the two are the same function with the same parameters;
   global pooling also keeps the head's size independent of the input size
   (the demo and from-scratch profiles use smaller images);
4. Dense 128 (ReLU), Dropout, Dense 4 (softmax).

Transfer learning: every layer before ``conv5_block1_preact_bn`` is frozen;
that layer and all after it train. A frozen BatchNormalization layer runs in
inference mode (Keras 3 semantics of ``trainable = False``).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import keras
from keras import layers

from brainlib.config import CLASSES, VARIANTS, Profile

FREEZE_BOUNDARY = "conv5_block1_preact_bn"
BACKBONE_OUTPUT = "post_relu"


class WeightsError(RuntimeError):
    """Backbone weights cannot be obtained or loaded."""


def se_block(x, ratio: int = 16, name: str = "se"):
    """Squeeze-and-excitation (Hu, Shen & Sun, CVPR 2018, doi:10.1109/CVPR.2018.00745).

    For a feature map ``x`` with ``C`` channels:

    - *squeeze*: ``z_c = mean over (h, w) of x[h, w, c]`` (global average pooling);
    - *excitation*: ``s = sigmoid(W2 relu(W1 z + b1) + b2)`` with ``W1`` of shape
      ``C/r x C`` and ``W2`` of shape ``C x C/r`` (the reduction ratio ``r``,
      16 in Hu et al. and here);
    - *scale*: ``y[h, w, c] = s_c * x[h, w, c]``.

    Adds ``2 C^2 / r + C/r + C`` parameters (526,464 for ``C = 2048``, ``r = 16``).
    """
    channels = x.shape[-1]
    if channels % ratio:
        raise ValueError(f"channels ({channels}) must be divisible by ratio ({ratio})")
    z = layers.GlobalAveragePooling2D(name=f"{name}_squeeze")(x)
    s = layers.Dense(channels // ratio, activation="relu", name=f"{name}_reduce")(z)
    s = layers.Dense(channels, activation="sigmoid", name=f"{name}_expand")(s)
    s = layers.Reshape((1, 1, channels), name=f"{name}_reshape")(s)
    return layers.Multiply(name=f"{name}_scale")([x, s])


def paper_head(x, dropout: float = 0.5, n_classes: int = len(CLASSES)):
    """The paper's classification head (see the module docstring)."""
    for filters in (32, 64, 128):
        x = layers.Conv2D(
            filters, 3, padding="same", activation="relu", name=f"head_conv{filters}"
        )(x)
        x = layers.BatchNormalization(name=f"head_bn{filters}")(x)
        x = layers.MaxPooling2D(padding="same", name=f"head_pool{filters}")(x)
    x = layers.GlobalAveragePooling2D(name="head_gap")(x)
    x = layers.Dense(128, activation="relu", name="head_dense")(x)
    x = layers.Dropout(dropout, name="head_dropout")(x)
    # float32 output, also under mixed precision, for a stable softmax and loss
    return layers.Dense(n_classes, activation="softmax", dtype="float32", name="predictions")(x)


def _backbone(weights: str | Path | None, input_shape):
    if weights in (None, "none", "None", ""):
        return keras.applications.ResNet50V2(
            include_top=False, weights=None, input_shape=input_shape
        )
    if weights == "imagenet":
        try:
            return keras.applications.ResNet50V2(
                include_top=False, weights="imagenet", input_shape=input_shape
            )
        except Exception as err:  # no network, proxy, truncated download ...
            raise WeightsError(
                f"could not download the ImageNet weights of ResNet50V2 ({type(err).__name__}: "
                f"{err}). Download resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5 from "
                "https://storage.googleapis.com/tensorflow/keras-applications/resnet/ on a "
                "machine with network access and pass its path instead: --weights PATH "
                "(or --set weights=PATH, or build_model(..., weights=PATH))."
            ) from err
    path = Path(weights).expanduser()
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist")
    net = keras.applications.ResNet50V2(include_top=False, weights=None, input_shape=input_shape)
    try:
        net.load_weights(str(path))
    except Exception as err:
        raise WeightsError(
            f"{path}: not ResNet50V2 (include_top=False) weights ({type(err).__name__}: {err})"
        ) from err
    return net


#: The HDF5 attribute that marks a stand-in backbone weights file (not ImageNet's).
STAND_IN_ATTR = "brainlib_stand_in"


def write_stand_in_weights(path: str | Path, seed: int = 0) -> Path:
    """A backbone weights file in the layout of Keras' ResNet50V2 no-top file
    (``resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5``), holding seeded
    random weights, for rehearsing the ``paper`` profile where the ImageNet
    weights cannot be downloaded. It is marked as a stand-in (an HDF5 attribute);
    runs that use it say so in run.json and the book's banner.
    """
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    keras.utils.set_random_seed(seed)
    net = keras.applications.ResNet50V2(include_top=False, weights=None, input_shape=(224, 224, 3))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{path.name}")
    with h5py.File(tmp, "w") as fh:
        legacy_h5_format.save_weights_to_hdf5_group(fh, net)
        fh.attrs[STAND_IN_ATTR] = f"random weights (seed {seed}), not ImageNet: a stand-in"
    tmp.replace(path)
    return path


def stand_in_note(weights: str | Path | None) -> str | None:
    """The stand-in note of a weights file, or ``None`` (ImageNet, none, or a real file)."""
    if weights in (None, "none", "None", "", "imagenet"):
        return None
    import h5py

    try:
        with h5py.File(Path(weights).expanduser(), "r") as fh:
            note = fh.attrs.get(STAND_IN_ATTR)
    except OSError:
        return None
    return None if note is None else str(note)


def build_model(
    variant: str,
    weights: str | Path | None = "imagenet",
    input_shape: tuple[int, int, int] = (224, 224, 3),
    se_ratio: int = 16,
    dropout: float = 0.5,
    trainable_from: str | None = FREEZE_BOUNDARY,
) -> keras.Model:
    """The paper's SE model (``variant="se"``) or its base model (``"base"``).

    ``trainable_from`` names the first trainable layer (the paper's
    ``conv5_block1_preact_bn``); ``None`` trains every layer (from scratch).
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    backbone = _backbone(weights, input_shape)
    x = backbone.output
    if variant == "se":
        x = se_block(x, se_ratio, name="se")
    outputs = paper_head(x, dropout)
    name = "resnet50v2_se" if variant == "se" else "resnet50v2_base"
    model = keras.Model(backbone.input, outputs, name=name)
    freeze_before(model, trainable_from)
    return model


def freeze_before(model: keras.Model, boundary: str | None) -> None:
    """Freeze every layer before ``boundary``; it and all later layers train."""
    if boundary is None:
        for layer in model.layers:
            layer.trainable = True
        return
    names = [layer.name for layer in model.layers]
    if boundary not in names:
        raise ValueError(f"no layer named {boundary!r} in {model.name}")
    cut = names.index(boundary)
    for i, layer in enumerate(model.layers):
        layer.trainable = i >= cut


def trunk_and_top(model: keras.Model, boundary: str = FREEZE_BOUNDARY):
    """Split ``model`` at ``boundary`` into the frozen trunk and the trainable top.

    ``trunk(images)`` gives the tensor that enters ``boundary``;
    ``top(features)`` gives the predictions. Both share the model's layers and
    weights: training ``top`` trains ``model``. In ResNet50V2 exactly one
    tensor (``conv4_block6_out``) crosses this boundary.
    """
    layer = model.get_layer(boundary)
    cut = layer.input
    trunk = keras.Model(model.input, cut, name=f"{model.name}_trunk")
    inputs = keras.Input(shape=cut.shape[1:], name="trunk_features")
    top_graph = keras.Model(cut, model.output, name=f"{model.name}_top_graph")
    top = keras.Model(inputs, top_graph(inputs), name=f"{model.name}_top")
    return trunk, top


def parameter_counts(model: keras.Model) -> dict[str, int]:
    """Total, trainable and frozen parameter counts."""
    total = sum(int(w.numpy().size) for w in model.weights)
    trainable = sum(int(w.numpy().size) for w in model.trainable_weights)
    return {"total": total, "trainable": trainable, "non_trainable": total - trainable}


def summary_table(model: keras.Model, head_only: bool = True):
    """A DataFrame of layers (name, type, output shape, parameters, trainable).

    ``head_only`` keeps the layers after the backbone and summarises the
    backbone in one row; the totals are in :func:`parameter_counts`.
    """
    import pandas as pd

    rows = []
    names = [layer.name for layer in model.layers]
    start = names.index(BACKBONE_OUTPUT) + 1 if head_only else 0
    if head_only:
        backbone = model.layers[:start]
        rows.append(
            {
                "layer": "ResNet50V2 backbone (input ... post_relu)",
                "type": "Functional",
                "output shape": str(tuple(model.get_layer(BACKBONE_OUTPUT).output.shape)),
                "parameters": sum(layer.count_params() for layer in backbone),
                "trainable": f"from {FREEZE_BOUNDARY}",
            }
        )
    for layer in model.layers[start:]:
        rows.append(
            {
                "layer": layer.name,
                "type": type(layer).__name__,
                "output shape": str(tuple(layer.output.shape)),
                "parameters": layer.count_params(),
                "trainable": bool(layer.trainable),
            }
        )
    return pd.DataFrame(rows)


# ------------------------------------------------------------------- from a profile


#: oneDNN's instruction-set levels, lowest first; bfloat16 is native from AVX512_CORE_BF16.
_ONEDNN_ISA = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE",
               "AVX512_CORE_VNNI", "AVX512_CORE_BF16", "AVX10_1_512", "AVX512_CORE_FP16",
               "AVX10_1_512_AMX", "AVX512_CORE_AMX", "AVX10_1_512_AMX_FP16",
               "AVX512_CORE_AMX_FP16")  # fmt: skip


def cpu_info(cpuinfo: str | None = None, max_isa: str | None = None) -> dict:
    """This CPU's model, its vector instruction sets and whether bfloat16 is native.

    bfloat16 is native where the CPU has AVX512_BF16 or AMX-BF16 and oneDNN may
    use it: ``$ONEDNN_MAX_CPU_ISA`` set below ``AVX512_CORE_BF16`` (for instance
    ``AVX2``, to rehearse a slower CPU) turns it off as it does for oneDNN.
    Without native support TensorFlow emulates bfloat16, which on an AVX2-only
    CPU made a training step 3.5 times slower than float32.
    """
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            cpuinfo = ""
    model, flags = platform_model(), set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            model = value.strip()
        if key.strip() == "flags":
            flags = set(value.split())
            break
    isa = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    native = bool({"avx512_bf16", "amx_bf16"} & flags)
    max_isa = os.environ.get("ONEDNN_MAX_CPU_ISA") if max_isa is None else max_isa
    if native and max_isa and max_isa.upper() != "ALL":
        level = max_isa.upper()
        native = level in _ONEDNN_ISA and _ONEDNN_ISA.index(level) >= _ONEDNN_ISA.index(
            "AVX512_CORE_BF16"
        )
    return {"model": model, "isa": isa, "native_bf16": native}


def platform_model() -> str:
    import platform

    return platform.processor() or platform.machine()


def precision_policy(mixed: bool | str) -> str:
    """``float32``, or the mixed policy for this machine (bf16 CPU, fp16 GPU).

    ``mixed`` is ``True`` (always mixed), ``False`` (never) or ``"auto"``:
    mixed on a GPU and on a CPU with native bfloat16 (:func:`cpu_info`),
    float32 elsewhere.
    """
    if mixed is False or mixed in ("false", "off", "no"):
        return "float32"
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return "mixed_float16"
    if mixed == "auto" and not cpu_info()["native_bf16"]:
        return "float32"
    return "mixed_bfloat16"


@contextlib.contextmanager
def dtype_policy(name: str):
    """Build models under Keras dtype policy ``name``; restore the old one afterwards."""
    old = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(old)


def build_for_profile(profile: Profile, variant: str, weights=None) -> keras.Model:
    """The model of ``variant`` with the profile's size, weights, precision and head settings."""
    with dtype_policy(precision_policy(profile.mixed_precision)):
        model = build_model(
            variant,
            weights=weights if weights is not None else profile.weights,
            input_shape=(profile.image_size, profile.image_size, 3),
            se_ratio=profile.se_ratio,
            dropout=profile.dropout,
            trainable_from=FREEZE_BOUNDARY if profile.trainable_from == "paper" else None,
        )
    if profile.bn_momentum is not None:
        # Short runs from scratch: BatchNorm's moving averages must catch up with
        # the batch statistics within a few hundred steps, or inference-mode
        # outputs (validation, test) collapse towards a constant.
        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = profile.bn_momentum
    return model
