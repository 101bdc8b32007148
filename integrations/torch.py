"""``trackline.watch``: gradient and parameter histograms of a torch model.

>>> run = trackline.init(project="mnist")
>>> trackline.watch(model, log="all", log_freq=100)
>>> ...  # train: every 100th backward pass logs `gradients/<name>` and `parameters/<name>`
>>> trackline.unwatch(model)

How it stays cheap:

* One gradient hook per watched parameter, nothing else (no module hooks, so a
  watched model still pickles and ``torch.save``\\s; the hooks are marked
  unserializable and are simply not saved).
* Backward passes are counted with a plain Python counter: the first hook to
  fire in a backward pass (a new autograd graph task) increments it. On the
  other passes a hook compares two ints and returns: no tensor op, no host sync.
* On a logging pass each histogram is computed on the tensor's device (min,
  max and bin counts with torch ops, non-finite values left out) and only the
  ``bins + 2`` numbers come to the host, in one transfer per tensor.
* Histograms are logged at ``run.step``: the step of the row the training loop
  logs after this backward pass. ``log_freq`` counts backward passes (with
  gradient accumulation, micro-batches).
"""

from __future__ import annotations

import fnmatch
import math
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import trackline
from torch.utils.hooks import RemovableHandle, unserializable_hook

__all__ = ["Watch", "histogram", "unwatch", "watch"]

LOG_CHOICES = ("gradients", "parameters", "all")
DEFAULT_BINS = 64

Include = str | Sequence[str] | Callable[[str], bool] | None

#: id(model) -> its Watch: the one registry of hook handles.
_watches: dict[int, Watch] = {}


def watch(
    models: Any,
    criterion: Any = None,
    log: str | None = "gradients",
    log_freq: int = 1000,
    idx: int | None = None,
    log_graph: bool = False,
    *,
    include: Include = None,
    bins: int = DEFAULT_BINS,
    run: trackline.Run | None = None,
    step: Callable[[], int] | None = None,
) -> Any:
    """Log histograms of a model's gradients and/or parameters every ``log_freq`` backward passes.

    W&B's signature and defaults (``criterion`` and ``idx`` are accepted and unused).

    Args:
        models: a ``torch.nn.Module`` (DDP/DataParallel and ``torch.compile`` wrappers are
            unwrapped), or a list or tuple of them (then a list of watches is returned).
        log: ``"gradients"``, ``"parameters"``, ``"all"`` or ``None`` (hooks nothing).
        log_freq: log on every ``log_freq``-th backward pass (W&B's default, 1000).
        log_graph: also save the module tree (``repr(model)``) as ``model_graph.txt``.
        include: only parameters whose name matches: a glob (``"encoder.*"``), a list
            of globs, or a callable taking the name.
        bins: bins per histogram.
        run: the run to log to (default: the current run).
        step: where histograms go (default: ``run.step``, the step the next row gets).

    Watching a model again replaces its previous watch. Returns the :class:`Watch`.
    """
    del criterion, idx
    if isinstance(models, (list, tuple)):
        return [
            watch(
                m,
                log=log,
                log_freq=log_freq,
                log_graph=log_graph,
                include=include,
                bins=bins,
                run=run,
                step=step,
            )
            for m in models
        ]
    model = models
    if log is not None and log not in LOG_CHOICES:
        raise ValueError(f"log must be one of {LOG_CHOICES} or None, not {log!r}")
    if isinstance(log_freq, bool) or not isinstance(log_freq, int) or log_freq < 1:
        raise ValueError(f"log_freq must be a positive int, not {log_freq!r}")
    if bins < 1:
        raise ValueError(f"bins must be positive, not {bins!r}")
    module = _unwrap(model)
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"watch() needs a torch.nn.Module, not {type(model).__name__}")
    if run is None:
        run = trackline.current_run()
        if run is None:
            raise RuntimeError("no active run: call trackline.init() before trackline.watch()")
    unwatch(module)
    selected = _match(include)
    params = [(name, p) for name, p in module.named_parameters() if selected(name)]
    handle = Watch(module, run, log, log_freq, bins, params, step)
    _watches[id(module)] = handle
    if log_graph:
        _save_graph(run, module)
    return handle


def unwatch(model: Any = None) -> None:
    """Remove the hooks of ``model`` (unwrapped like in ``watch``), or of every watched model."""
    if model is None:
        for each in list(_watches.values()):
            each.remove()
        return
    handle = _watches.get(id(_unwrap(model)))
    if handle is not None:
        handle.remove()


class Watch:
    """The hooks ``watch`` put on one model. ``remove()`` takes them off."""

    def __init__(
        self,
        module: torch.nn.Module,
        run: trackline.Run,
        log: str | None,
        log_freq: int,
        bins: int,
        params: list[tuple[str, torch.nn.Parameter]],
        step: Callable[[], int] | None,
    ) -> None:
        self.run = run
        self.log_freq = log_freq
        self.bins = bins
        self.backwards = 0  # backward passes seen
        self._module_id = id(module)
        self._gradients = log in ("gradients", "all")
        self._parameters = log in ("parameters", "all")
        self._params = params
        self._step_of = step or (lambda: run.step)
        self._task = -1  # autograd graph task of the backward pass being counted
        self._lock = threading.Lock()
        self._due = False
        self._step = 0
        self._handles: list[RemovableHandle] = []
        if log is not None:
            for name, param in params:
                if param.requires_grad:
                    self._handles.append(param.register_hook(self._hook(name)))  # type: ignore[no-untyped-call]

    def _hook(self, name: str) -> Callable[[torch.Tensor], None]:
        key = "gradients/" + name

        def hook(grad: torch.Tensor) -> None:
            task = torch._C._current_graph_task_id()
            if task != self._task:
                with self._lock:  # hooks of parameters on two devices run on two threads
                    if task != self._task:
                        self._new_backward(task)
            if self._due and self._gradients:
                self._log(key, grad)

        # Not saved with the model, and no warning when it is pickled (torch.save).
        unserializable_hook(hook)  # type: ignore[no-untyped-call]
        return hook

    def _new_backward(self, task: int) -> None:
        if self.run.state != "running":
            # The run is over. Removing hooks from inside a hook is unsafe; unwatch() does it.
            self._due = False
        else:
            self.backwards += 1
            self._due = self.backwards % self.log_freq == 0
            if self._due:
                self._step = self._step_of()
                if self._parameters:
                    for name, param in self._params:
                        self._log("parameters/" + name, param)
        self._task = task  # last: other threads read _due and _step once they see it

    def _log(self, key: str, tensor: torch.Tensor) -> None:
        result = histogram(tensor, self.bins)
        if result is not None:
            self.run._log_histogram(key, result[0], result[1], step=self._step)

    def remove(self) -> None:
        """Remove every hook of this watch."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        if _watches.get(self._module_id) is self:
            del _watches[self._module_id]

    def __repr__(self) -> str:
        return f"<Watch {len(self._handles)} hooks, every {self.log_freq} backward passes>"


def histogram(
    tensor: torch.Tensor, bins: int = DEFAULT_BINS
) -> tuple[list[float], list[float]] | None:
    """``(edges, counts)`` of the finite values of ``tensor``, computed on its device.

    ``edges`` has ``bins + 1`` items (2 when all values are equal, with one count).
    ``None`` when there is no finite value.
    """
    flat = tensor.detach()
    if flat.is_sparse:
        flat = flat.to_dense()
    flat = flat.reshape(-1)
    if flat.numel() == 0 or flat.is_complex():
        return None
    if not flat.is_floating_point() or flat.element_size() < 4:
        flat = flat.float()  # integers, float16, bfloat16: the bin arithmetic needs float32
    finite = torch.isfinite(flat)
    lo = torch.where(finite, flat, math.inf).amin()
    hi = torch.where(finite, flat, -math.inf).amax()
    span = hi - lo
    scale = torch.where(span > 0, bins / span, torch.zeros_like(span))
    index = ((torch.where(finite, flat, lo) - lo) * scale).long().clamp_(0, bins - 1)
    counts = torch.zeros(bins, dtype=torch.int64, device=flat.device)
    counts.index_add_(0, index, finite.long())
    wide = torch.float32 if flat.device.type == "mps" else torch.float64  # MPS has no float64
    # The only host transfer: bins + 2 numbers.
    values = torch.cat([torch.stack([lo, hi]).to(wide), counts.to(wide)]).tolist()
    low, high, numbers = values[0], values[1], values[2:]
    if not (math.isfinite(low) and math.isfinite(high)):
        return None
    if low == high:
        return [low, high], [sum(numbers)]
    width = (high - low) / bins
    edges = [low + i * width for i in range(bins)] + [high]
    return edges, numbers


def _unwrap(model: Any) -> Any:
    """The module inside DDP / DataParallel / ``torch.compile`` wrappers."""
    while True:
        if isinstance(model, (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)):
            model = model.module
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, torch.nn.Module):
            model = model._orig_mod  # torch.compile's OptimizedModule
        else:
            return model


def _match(include: Include) -> Callable[[str], bool]:
    if include is None:
        return lambda name: True
    if callable(include):
        return include
    patterns = [include] if isinstance(include, str) else list(include)
    return lambda name: any(fnmatch.fnmatchcase(name, p) for p in patterns)


def _save_graph(run: trackline.Run, module: torch.nn.Module) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "model_graph.txt")
        path.write_text(repr(module) + "\n", encoding="utf-8")
        run.save(path, base_path=tmp)
