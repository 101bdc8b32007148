"""Charts logged as data: ``trackline.plot.*`` (W&B's ``wandb.plot.*``).

Each function returns a ``CustomChart``: a ``Table`` of the points plus a small spec
(``kind``, the columns to draw, a title) stored with it. Log it like any media,
``run.log({"pr": trackline.plot.pr_curve(y_true, probas, labels)})``; the run page draws
it above its table, and the table stays downloadable (Parquet).

Curves are computed here, with numpy: precision-recall and ROC per class (at most
``MAX_POINTS`` points each), a confusion matrix from labels or class probabilities.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .media import Table

#: The most points a computed curve keeps per class (evenly over its thresholds).
MAX_POINTS = 200

__all__ = [
    "CustomChart",
    "bar",
    "confusion_matrix",
    "histogram",
    "line",
    "line_series",
    "pr_curve",
    "roc_curve",
    "scatter",
]


class CustomChart(Table):
    """A table with the chart that draws it (``spec``: ``kind``, columns, ``title``)."""

    def __init__(self, table: Table, spec: dict[str, Any]) -> None:
        super().__init__(columns=table.columns, data=table.data)
        for name in (v for k, v in spec.items() if k in _COLUMN_FIELDS and v is not None):
            if name not in self.columns:
                raise ValueError(f"the table has no column {name!r} (it has {self.columns})")
        self.spec = spec

    def frozen(self) -> CustomChart:
        copy = CustomChart.__new__(CustomChart)
        copy.__dict__.update(super().frozen().__dict__)
        copy.spec = dict(self.spec)
        return copy

    def write(self, media_dir: Any) -> dict[str, Any]:
        item = super().write(media_dir)
        item["chart"] = dict(self.spec)
        return item

    def __repr__(self) -> str:
        return f"<trackline.plot {self.spec['kind']} chart, {self.rows} rows>"


_COLUMN_FIELDS = ("x", "y", "stroke", "label", "value")


def line(
    table: Table, x: str, y: str, stroke: str | None = None, title: str = "", **_: Any
) -> CustomChart:
    """Lines of ``y`` over ``x``; one line per value of ``stroke`` when given."""
    return CustomChart(table, {"kind": "line", "x": x, "y": y, "stroke": stroke, "title": title})


def scatter(table: Table, x: str, y: str, title: str = "", **_: Any) -> CustomChart:
    """A point per row: ``x`` against ``y``."""
    return CustomChart(table, {"kind": "scatter", "x": x, "y": y, "title": title})


def bar(table: Table, label: str, value: str, title: str = "", **_: Any) -> CustomChart:
    """A bar per row: ``value`` for each ``label``."""
    return CustomChart(table, {"kind": "bar", "label": label, "value": value, "title": title})


def histogram(table: Table, value: str, title: str = "", **_: Any) -> CustomChart:
    """The distribution of the column ``value`` (binned when drawn)."""
    return CustomChart(table, {"kind": "histogram", "value": value, "title": title})


def line_series(
    xs: Sequence[Any],
    ys: Sequence[Sequence[Any]],
    keys: Sequence[str] | None = None,
    title: str = "",
    xname: str = "x",
    **_: Any,
) -> CustomChart:
    """Several lines: ``ys[i]`` over ``xs`` (or over ``xs[i]`` when ``xs`` is a list of
    lists), named ``keys[i]`` (default ``key_0``, ``key_1``, ...)."""
    names = list(keys) if keys is not None else [f"key_{i}" for i in range(len(ys))]
    if len(names) != len(ys):
        raise ValueError(f"line_series: {len(names)} keys for {len(ys)} lines")
    per_line = (bool(xs) and isinstance(xs[0], (list, tuple))) or _is_2d(xs)
    rows = []
    for i, (name, values) in enumerate(zip(names, ys, strict=True)):
        line_xs = list(xs[i]) if per_line else list(xs)
        if len(line_xs) != len(values):
            raise ValueError(f"line_series: line {name!r} has {len(values)} y for {len(line_xs)} x")
        rows += [[str(name), _number(x), _number(y)] for x, y in zip(line_xs, values, strict=True)]
    table = Table(columns=["lineKey", xname, "y"], data=rows)
    spec = {"kind": "line", "x": xname, "y": "y", "stroke": "lineKey", "title": title}
    return CustomChart(table, spec)


def confusion_matrix(
    probs: Any = None,
    y_true: Sequence[Any] | None = None,
    preds: Sequence[Any] | None = None,
    class_names: Sequence[str] | None = None,
    title: str = "",
    **_: Any,
) -> CustomChart:
    """Counts of (actual, predicted) class: from ``preds`` (class indices) or ``probs``
    (per row, each class's probability; the argmax is the prediction)."""
    import numpy as np

    if y_true is None:
        raise ValueError("confusion_matrix needs y_true")
    if (probs is None) == (preds is None):
        raise ValueError("confusion_matrix takes probs or preds, one of the two")
    truth = np.asarray(y_true).astype(int).ravel()
    predicted = (
        np.asarray(preds).astype(int).ravel()
        if preds is not None
        else np.argmax(np.asarray(probs), axis=1)
    )
    if truth.shape != predicted.shape:
        raise ValueError(f"confusion_matrix: {truth.size} labels for {predicted.size} predictions")
    count = int(max(truth.max(initial=0), predicted.max(initial=0))) + 1
    names = list(class_names) if class_names is not None else [str(i) for i in range(count)]
    if len(names) < count:
        raise ValueError(f"confusion_matrix: {len(names)} class names for {count} classes")
    counts = np.zeros((len(names), len(names)), dtype=np.int64)
    np.add.at(counts, (truth, predicted), 1)
    rows = [
        [names[a], names[p], int(counts[a, p])]
        for a in range(len(names))
        for p in range(len(names))
    ]
    table = Table(columns=["Actual", "Predicted", "nPredictions"], data=rows)
    return CustomChart(
        table,
        {
            "kind": "confusion",
            "x": "Predicted",
            "y": "Actual",
            "value": "nPredictions",
            "title": title,
        },
    )


def pr_curve(
    y_true: Sequence[Any],
    y_probas: Any,
    labels: Sequence[str] | None = None,
    classes_to_plot: Sequence[int] | None = None,
    title: str = "",
    **_: Any,
) -> CustomChart:
    """Precision against recall for each class (one against the rest)."""
    return _curves("pr", y_true, y_probas, labels, classes_to_plot, title)


def roc_curve(
    y_true: Sequence[Any],
    y_probas: Any,
    labels: Sequence[str] | None = None,
    classes_to_plot: Sequence[int] | None = None,
    title: str = "",
    **_: Any,
) -> CustomChart:
    """True against false positive rate for each class (one against the rest)."""
    return _curves("roc", y_true, y_probas, labels, classes_to_plot, title)


def _curves(
    which: str,
    y_true: Sequence[Any],
    y_probas: Any,
    labels: Sequence[str] | None,
    classes: Sequence[int] | None,
    title: str,
) -> CustomChart:
    import numpy as np

    truth = np.asarray(y_true).ravel()
    scores = np.asarray(y_probas, dtype=float)
    if scores.ndim == 1:  # a binary classifier's probability of class 1
        scores = np.stack([1 - scores, scores], axis=1)
    if scores.shape[0] != truth.size:
        raise ValueError(
            f"{which}_curve: {truth.size} labels for {scores.shape[0]} rows of probabilities"
        )
    names = list(labels) if labels is not None else [str(i) for i in range(scores.shape[1])]
    rows: list[list[Any]] = []
    for k in classes if classes is not None else range(scores.shape[1]):
        positive = truth == k
        order = np.argsort(-scores[:, k], kind="stable")
        hits = positive[order]
        tp = np.cumsum(hits)
        fp = np.cumsum(~hits)
        total_p, total_n = max(int(positive.sum()), 1), max(int((~positive).sum()), 1)
        if which == "pr":
            xs = tp / total_p
            ys = tp / np.maximum(tp + fp, 1)
            xs, ys = np.concatenate([[0.0], xs]), np.concatenate([[1.0], ys])
        else:
            xs = np.concatenate([[0.0], fp / total_n])
            ys = np.concatenate([[0.0], tp / total_p])
        keep = np.unique(np.linspace(0, xs.size - 1, min(xs.size, MAX_POINTS)).round().astype(int))
        rows += [[names[k], float(xs[i]), float(ys[i])] for i in keep]
    x, y = ("recall", "precision") if which == "pr" else ("fpr", "tpr")
    table = Table(columns=["class", x, y], data=rows)
    return CustomChart(table, {"kind": "line", "x": x, "y": y, "stroke": "class", "title": title})


def _is_2d(values: Any) -> bool:
    return getattr(values, "ndim", 1) == 2


def _number(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
