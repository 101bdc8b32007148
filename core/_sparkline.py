"""Terminal sparklines of a run's metrics, for following a run over SSH without a browser."""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Sequence
from typing import Any

BARS = "▁▂▃▄▅▆▇█"
"""Eight levels, lowest to highest; a column with no finite value is a space."""


def sparkline(values: Sequence[float], width: int) -> str:
    """``values`` as at most ``width`` bars, each the mean of its share of the points.

    NaN and infinities are left out of the means and the scale; a flat series is a row
    of middle bars, so a constant is not mistaken for a minimum.
    """
    if width <= 0 or not values:
        return ""
    columns = min(width, len(values))
    means: list[float | None] = []
    for column in range(columns):
        start = column * len(values) // columns
        end = max(start + 1, (column + 1) * len(values) // columns)
        finite = [v for v in values[start:end] if math.isfinite(v)]
        means.append(sum(finite) / len(finite) if finite else None)
    known = [m for m in means if m is not None]
    if not known:
        return " " * columns
    low, high = min(known), max(known)
    span = high - low
    top = len(BARS) - 1
    out = []
    for mean in means:
        if mean is None:
            out.append(" ")
        elif span <= 0 or not math.isfinite(span):
            out.append(BARS[top // 2])
        else:
            out.append(BARS[round((mean - low) / span * top)])
    return "".join(out)


def metric_series(rows: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Each numeric key of history ``rows`` (``_step``/``_time`` left out) as its values in step order."""
    series: dict[str, list[float]] = {}
    for row in rows:
        for key, value in row.items():
            if key.startswith("_") or isinstance(value, bool):
                continue
            if isinstance(value, (int, float)):
                series.setdefault(key, []).append(float(value))
    return series


def main_metrics(
    series: dict[str, list[float]], patterns: Sequence[str] = (), limit: int = 6
) -> list[str]:
    """The keys to draw: those matching ``patterns`` (globs, in their order), else the
    ``limit`` keys logged most often (ties in the order first logged): the training curves."""
    if patterns:
        chosen: list[str] = []
        for pattern in patterns:
            chosen += [
                k for k in sorted(series) if fnmatch.fnmatchcase(k, pattern) and k not in chosen
            ]
        return chosen
    return sorted(series, key=lambda k: -len(series[k]))[:limit]
