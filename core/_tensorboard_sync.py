"""``init(sync_tensorboard=True)``: what the script writes with TensorBoard's
``SummaryWriter`` (PyTorch's or tensorboardX's) is also logged to the run, as W&B does.

Scalars go to ``run.log`` with the writer's step as ``global_step`` (the x axis of every
key, as W&B sets it); ``add_scalars`` becomes ``main/key`` keys; histograms become
``Histogram``s. The event files are written as before. The patch lives in this process
only, from ``init`` until the run finishes.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import sys
from collections.abc import Callable
from typing import Any

#: Modules whose ``SummaryWriter`` is mirrored, where they are importable.
WRITERS = ("torch.utils.tensorboard.writer", "tensorboardX.writer")

_patched: list[tuple[Any, str, Callable[..., Any]]] = []
Mirror = Callable[[Any, Any, Any], None]


def start(run: Any) -> None:
    """Mirror ``SummaryWriter`` calls into ``run`` (until ``stop``)."""
    stop()
    found = False
    for name in WRITERS:
        if name.partition(".")[0] not in sys.modules and not _importable(name):
            continue
        try:
            module = importlib.import_module(name)
        except Exception:
            continue
        writer = getattr(module, "SummaryWriter", None)
        if writer is None:
            continue
        found = True

        def scalar(tag: Any, value: Any, step: Any) -> None:
            _log(run, {str(tag): _value(value)}, step)

        def scalars(main: Any, values: Any, step: Any) -> None:
            _log(run, {f"{main}/{key}": _value(v) for key, v in values.items()}, step)

        def histogram(tag: Any, values: Any, step: Any) -> None:
            _log(run, {str(tag): _histogram(values)}, step)

        _wrap(writer, "add_scalar", scalar)
        _wrap(writer, "add_scalars", scalars)
        _wrap(writer, "add_histogram", histogram)
    if found:
        run.define_metric("*", step_metric="global_step")


def stop() -> None:
    """Undo ``start``."""
    while _patched:
        owner, name, original = _patched.pop()
        setattr(owner, name, original)


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name.partition(".")[0]) is not None
    except (ImportError, ValueError):
        return False


def _wrap(owner: Any, name: str, mirror: Mirror) -> None:
    """After each ``owner.name(tag, value, global_step, ...)``, ``mirror(tag, value, step)``."""
    original = getattr(owner, name, None)
    if original is None:
        return

    @functools.wraps(original)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(self, *args, **kwargs)
        try:
            tag = args[0] if args else kwargs.get("tag", kwargs.get("main_tag"))
            value = (
                args[1]
                if len(args) > 1
                else kwargs.get("scalar_value", kwargs.get("tag_scalar_dict", kwargs.get("values")))
            )
            step = args[2] if len(args) > 2 else kwargs.get("global_step")
            mirror(tag, value, step)
        except Exception as exc:
            from ._warn import warn_once

            warn_once(
                f"tb-sync:{name}", f"trackline: sync_tensorboard could not record {name}: {exc}"
            )
        return result

    _patched.append((owner, name, original))
    setattr(owner, name, wrapper)


def _value(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _log(run: Any, row: dict[str, Any], step: Any) -> None:
    if step is not None:
        row["global_step"] = int(_value(step))
    run.log(row)


def _histogram(values: Any) -> Any:
    from .media import Histogram

    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    return Histogram(values)
