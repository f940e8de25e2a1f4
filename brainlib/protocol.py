"""The paper's training protocol, in plain Keras.

The paper ("Model development and architecture"): Adam with learning rate 1e-4,
categorical cross-entropy, batch 16, at most 100 epochs, early stopping on
validation loss with the best weights restored, and the learning rate reduced
when validation loss plateaus. Every value is a field of
:class:`brainlib.config.Profile`; this module turns a profile into the
``compile`` call and the two callbacks, and nothing else:

    model.compile(optimizer=Adam(profile.learning_rate),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    model.fit(train, validation_data=val, epochs=profile.max_epochs,
              callbacks=[ReduceLROnPlateau(...), EarlyStopping(..., restore_best_weights=True)])

:mod:`brainlib.checkpoints` makes the same callbacks survive a restart, and
:mod:`brainlib.trunk_cache` computes the frozen trunk once (the fast path);
:mod:`brainlib.training` joins the three into a resumable run folder.
"""

from __future__ import annotations

from brainlib.config import Profile

LOSS = "categorical_crossentropy"
MONITOR = "val_loss"


def set_determinism(seed: int, ops: bool = True) -> None:
    """Seed Python, NumPy and TensorFlow/Keras; make TensorFlow ops deterministic.

    Op determinism and XLA exclude each other in Keras (it silently drops
    ``jit_compile``), so a profile with ``jit_compile`` passes ``ops=False``
    and its run.json says ``"deterministic": false``.
    """
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)  # random, numpy, tensorflow, keras
    if ops:
        tf.config.experimental.enable_op_determinism()


def compile_model(model, profile: Profile):
    """Adam at the profile's learning rate, categorical cross-entropy, accuracy."""
    import keras

    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=profile.learning_rate),
        loss=LOSS,
        metrics=["accuracy"],
        jit_compile=bool(profile.jit_compile),
    )
    return model


def early_stopping_settings(profile: Profile) -> dict:
    """``keras.callbacks.EarlyStopping``'s arguments under the protocol."""
    return {
        "monitor": MONITOR,
        "patience": profile.early_stopping_patience,
        "restore_best_weights": True,
    }


def reduce_lr_settings(profile: Profile) -> dict:
    """``keras.callbacks.ReduceLROnPlateau``'s arguments under the protocol."""
    return {
        "monitor": MONITOR,
        "factor": profile.reduce_lr_factor,
        "patience": profile.reduce_lr_patience,
        "min_lr": profile.min_learning_rate,
    }


def callbacks(profile: Profile) -> list:
    """``[ReduceLROnPlateau, EarlyStopping]`` as the protocol sets them (in this order:
    the learning rate is cut before early stopping looks at the same epoch)."""
    import keras

    return [
        keras.callbacks.ReduceLROnPlateau(**reduce_lr_settings(profile)),
        keras.callbacks.EarlyStopping(**early_stopping_settings(profile)),
    ]


def settings(model, callbacks_: list) -> dict:
    """What a compiled model and its callbacks do, as one flat dict of plain values: the
    optimizer's class and learning rate, the loss, and each callback's protocol arguments
    (``"EarlyStopping patience"``, say), in the order the callbacks run.

    Two set-ups train alike when their settings are equal; chapter 3 compares the
    protocol written out in Keras with this module's this way.
    """
    import keras

    loss = model.loss if isinstance(model.loss, str) else getattr(model.loss, "name", None)
    out = {
        "optimizer": type(model.optimizer).__name__,
        "learning rate": float(
            f"{float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)):.6g}"
        ),
        "loss": loss,
    }
    for order, cb in enumerate(callbacks_, 1):
        kind = next(c.__name__ for c in type(cb).__mro__ if c.__module__.startswith("keras"))
        out[f"callback {order}"] = kind
        for name in ("monitor", "patience", "restore_best_weights", "factor", "min_lr"):
            if hasattr(cb, name):
                out[f"{kind} {name}"] = getattr(cb, name)
    return out
