"""A Keras classifier logged with ``TracklineCallback`` (any Keras 3 backend).

    python examples/keras_classifier.py
    KERAS_BACKEND=torch python examples/keras_classifier.py

Offline on CPU in a few seconds, on generated data. With ``TRACKLINE_SERVER`` set,
the run is also shipped to that server.
"""

from __future__ import annotations

import numpy as np
import trackline


def main() -> None:
    import keras
    from trackline.integrations.keras import TracklineCallback

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1024, 16)).astype("float32")
    y = (x[:, :4].sum(axis=1) > 0).astype("int32")  # two classes

    model = keras.Sequential(
        [
            keras.Input((16,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    schedule = keras.optimizers.schedules.CosineDecay(1e-2, decay_steps=200)
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    callback = TracklineCallback(
        log_freq=10,  # every 10 batches, plus one row per epoch
        log_model="best",
        monitor="val_loss",
    )
    # Started here, the run holds fit and evaluate; without it the callback starts one per call.
    run = trackline.init(project="examples", name="keras-classifier", config={"batch_size": 32})
    model.fit(x, y, validation_split=0.2, epochs=5, batch_size=32, verbose=0, callbacks=[callback])
    model.evaluate(x, y, verbose=0, callbacks=[callback])
    run.finish()
    print(f"run {run.id}: {run.dir}")


if __name__ == "__main__":
    main()
