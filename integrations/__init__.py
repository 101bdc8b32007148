"""Framework adapters. Each module imports its framework only when it is itself imported.

* ``trackline.integrations.torch``: ``watch(model, log=..., log_freq=...)`` and
  ``unwatch()``, gradient/parameter histograms computed on the device (also
  ``trackline.watch``, ``trackline.unwatch`` and ``Run.watch``).
* ``trackline.integrations.keras``: ``TracklineCallback``, a Keras 3 callback.
* ``trackline.integrations.lightning``: ``TracklineLogger`` (``lightning.pytorch``)
  and ``PLTracklineLogger`` (``pytorch_lightning``), Lightning loggers.
* ``trackline.integrations.transformers``: ``TracklineCallback``, a ``TrainerCallback``;
  ``register()`` adds ``report_to="trackline"``.
"""
