"""The paper's models: exact sizes, the frozen boundary, the SE arithmetic, weights."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from brainlib import models  # noqa: E402
from brainlib.models import (  # noqa: E402
    FREEZE_BOUNDARY,
    WeightsError,
    build_model,
    parameter_counts,
    se_block,
    summary_table,
    trunk_and_top,
)


@pytest.fixture(scope="module")
def se_model():
    return build_model("se", weights=None)


@pytest.fixture(scope="module")
def base_model():
    return build_model("base", weights=None)


def test_exact_parameter_counts_at_224(se_model, base_model):
    # ResNet50V2 without top: 23,564,800. Head: conv 589,856 + 18,496 + 73,856,
    # BN 128 + 256 + 512, dense 16,512 + 516 = 700,132. SE: 2*2048*128 + 128 + 2048.
    assert parameter_counts(base_model) == {
        "total": 24_264_932,
        "trainable": 15_670_564,
        "non_trainable": 8_594_368,
    }
    assert parameter_counts(se_model) == {
        "total": 24_791_396,
        "trainable": 16_197_028,
        "non_trainable": 8_594_368,
    }
    assert parameter_counts(se_model)["total"] - parameter_counts(base_model)["total"] == (
        2 * 2048 * 128 + 128 + 2048
    )


def test_frozen_boundary_is_conv5_block1_preact_bn(se_model):
    names = [layer.name for layer in se_model.layers]
    cut = names.index(FREEZE_BOUNDARY)
    assert names[cut - 1] == "conv4_block6_out"
    assert not any(layer.trainable for layer in se_model.layers[:cut])
    assert all(layer.trainable for layer in se_model.layers[cut:])
    assert se_model.get_layer("conv5_block3_out").trainable
    assert not se_model.get_layer("conv4_block6_3_conv").trainable


def test_frozen_batchnorm_runs_in_inference_mode(se_model):
    bn = se_model.get_layer("conv4_block6_preact_bn")
    assert not bn.trainable
    x = np.random.default_rng(0).normal(3.0, 2.0, (4, 7, 7, bn.input.shape[-1])).astype("float32")
    np.testing.assert_allclose(bn(x, training=True), bn(x, training=False), atol=1e-6)
    live = se_model.get_layer("conv5_block1_preact_bn")
    assert live.trainable
    assert not np.allclose(
        live(np.ones((2, 7, 7, 1024)) * 5, training=True),
        live(np.ones((2, 7, 7, 1024)) * 5, training=False),
    )


def test_flat_graph_reaches_backbone_layers_by_name(se_model, base_model):
    for model in (se_model, base_model):
        assert model.get_layer("post_relu").output.shape[1:] == (7, 7, 2048)
        assert all(not isinstance(layer, keras.Model) for layer in model.layers)
    scale = se_model.get_layer("se_scale")  # the SE block rescales post_relu itself
    assert isinstance(scale, keras.layers.Multiply)
    assert scale.input[0] is se_model.get_layer("post_relu").output
    assert se_model.get_layer("head_conv32").input is scale.output
    with pytest.raises(ValueError):
        base_model.get_layer("se_scale")
    table = summary_table(se_model)
    assert table["parameters"].sum() == parameter_counts(se_model)["total"]
    assert list(table["layer"])[1:3] == ["se_squeeze", "se_reduce"]


def test_se_block_arithmetic_by_hand():
    c, r = 4, 2
    inp = keras.Input((2, 2, c))
    model = keras.Model(inp, se_block(inp, ratio=r, name="t"))
    w1 = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, -1.0]], "float32")  # C x C/r
    b1 = np.array([0.0, 0.5], "float32")
    w2 = np.array([[1.0, -1.0, 0.0, 2.0], [0.0, 1.0, -1.0, 0.0]], "float32")  # C/r x C
    b2 = np.array([0.0, 0.0, 1.0, -1.0], "float32")
    model.get_layer("t_reduce").set_weights([w1, b1])
    model.get_layer("t_expand").set_weights([w2, b2])
    x = np.arange(16, dtype="float32").reshape(1, 2, 2, 4) / 10.0
    z = x.mean(axis=(1, 2))  # squeeze: [[0.6, 0.7, 0.8, 0.9]]
    hidden = np.maximum(z @ w1 + b1, 0)  # [[1.4, 1.0]]
    s = 1 / (1 + np.exp(-(hidden @ w2 + b2)))  # excitation
    expected = x * s[:, None, None, :]
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-6)
    np.testing.assert_allclose(z, [[0.6, 0.7, 0.8, 0.9]], rtol=1e-6)


def test_trunk_and_top_give_the_models_predictions(se_model):
    trunk, top = trunk_and_top(se_model)
    assert trunk.output.shape[1:] == (7, 7, 1024)
    x = np.random.default_rng(1).uniform(-1, 1, (2, 224, 224, 3)).astype("float32")
    full = se_model(x, training=False).numpy()
    split = top(trunk(x, training=False), training=False).numpy()
    np.testing.assert_allclose(full, split, atol=1e-4)
    assert {w.path for w in top.trainable_weights} == {w.path for w in se_model.trainable_weights}


def test_imagenet_unreachable_says_how_to_pass_a_file(monkeypatch):
    real = keras.applications.ResNet50V2

    def offline(*args, weights=None, **kwargs):
        if weights == "imagenet":
            raise OSError("URL fetch failure: no network")
        return real(*args, weights=weights, **kwargs)

    monkeypatch.setattr(keras.applications, "ResNet50V2", offline)
    with pytest.raises(WeightsError, match="pass its path instead: --weights PATH"):
        build_model("se", weights="imagenet", input_shape=(32, 32, 3))


@pytest.mark.parametrize("layout", ["keras3", "legacy_h5"])
def test_backbone_weights_from_a_file(tmp_path, layout):
    donor = keras.applications.ResNet50V2(include_top=False, weights=None, input_shape=(32, 32, 3))
    rng = np.random.default_rng(3)
    donor.get_layer("conv1_conv").set_weights(
        [
            rng.normal(size=w.shape).astype("float32")
            for w in donor.get_layer("conv1_conv").get_weights()
        ]
    )
    if layout == "keras3":
        path = tmp_path / "resnet50v2_notop.weights.h5"
        donor.save_weights(path)
    else:  # the layout of Keras' own resnet50v2_..._notop.h5
        import h5py
        from keras.src.legacy.saving import legacy_h5_format

        path = tmp_path / "resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5"
        with h5py.File(path, "w") as fh:
            legacy_h5_format.save_weights_to_hdf5_group(fh, donor)
    model = build_model("base", weights=str(path), input_shape=(32, 32, 3))
    for a, b in zip(
        model.get_layer("conv1_conv").get_weights(),
        donor.get_layer("conv1_conv").get_weights(),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(WeightsError, match="does not exist"):
        build_model("base", weights=str(tmp_path / "nope.h5"), input_shape=(32, 32, 3))
    (tmp_path / "junk.weights.h5").write_bytes(b"junk")
    with pytest.raises(WeightsError, match=r"junk\.weights\.h5"):
        build_model("base", weights=str(tmp_path / "junk.weights.h5"), input_shape=(32, 32, 3))


def test_unknown_variant():
    with pytest.raises(ValueError, match="variant"):
        models.build_model("cbam", weights=None, input_shape=(32, 32, 3))


AVX2_ONLY = "model name\t: AMD EPYC 7B12\nflags\t\t: fpu sse2 avx avx2 fma\n"
BF16 = "model name\t: AMD EPYC 9B14\nflags\t\t: fpu sse2 avx avx2 avx512f avx512_bf16\n"


def test_cpu_info_reads_native_bfloat16_and_oneDNNs_isa_cap():
    assert models.cpu_info(AVX2_ONLY, max_isa="") == {
        "model": "AMD EPYC 7B12", "isa": ["avx2"], "native_bf16": False}  # fmt: skip
    assert models.cpu_info(BF16, max_isa="")["native_bf16"] is True
    assert models.cpu_info(BF16, max_isa="ALL")["native_bf16"] is True
    # ONEDNN_MAX_CPU_ISA below AVX512_CORE_BF16 (a rehearsal of a slower CPU) turns it off
    assert models.cpu_info(BF16, max_isa="AVX2")["native_bf16"] is False
    assert models.cpu_info(BF16, max_isa="avx512_core")["native_bf16"] is False
    assert models.cpu_info(BF16, max_isa="AVX512_CORE_AMX")["native_bf16"] is True


def test_mixed_precision_auto_is_float32_without_native_bfloat16(monkeypatch):
    monkeypatch.setattr(models, "cpu_info", lambda: {"native_bf16": False})
    assert models.precision_policy("auto") == "float32"
    assert models.precision_policy(True) == "mixed_bfloat16"  # asked for: given, even if slow
    assert models.precision_policy(False) == "float32"
    monkeypatch.setattr(models, "cpu_info", lambda: {"native_bf16": True})
    assert models.precision_policy("auto") == "mixed_bfloat16"


def test_stand_in_weights_load_as_a_backbone_and_say_what_they_are(tmp_path):
    path = models.write_stand_in_weights(tmp_path / "stand-in.h5", seed=5)
    assert "not ImageNet" in models.stand_in_note(path)
    assert models.stand_in_note("imagenet") is None and models.stand_in_note("none") is None
    model = build_model("base", weights=str(path), input_shape=(32, 32, 3))
    again = models.write_stand_in_weights(tmp_path / "again.h5", seed=5)
    other = build_model("base", weights=str(again), input_shape=(32, 32, 3))
    for a, b in zip(model.get_layer("conv1_conv").get_weights(),
                    other.get_layer("conv1_conv").get_weights(), strict=True):  # fmt: skip
        np.testing.assert_array_equal(a, b)  # seeded: the same file twice
