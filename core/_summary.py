"""The run summary: one value per key, computed from the history by rules.

The same class runs in the training process (``run.summary``), in the reader
(``open_run``, so a crashed run still has a summary) and on the server.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping
from typing import Any

SUMMARY_KINDS = ("last", "first", "min", "max", "mean", "none")


class _Rule:
    __slots__ = ("name", "step_metric", "summary")

    def __init__(self, name: str, summary: str, step_metric: str | None) -> None:
        self.name = name
        self.summary = summary
        self.step_metric = step_metric


class Summarizer:
    """Computes a summary from metric rows, ``define_metric`` rules and user overrides."""

    def __init__(self) -> None:
        self.last: dict[str, Any] = {}
        self._rules: list[_Rule] = []
        self._rule_of: dict[str, _Rule | None] = {}
        self._special: dict[str, list[Any]] = {}  # key -> [kind, state...]
        self.overrides: dict[str, Any] = {}

    def dump(self) -> dict[str, Any]:
        """Plain data (msgpack- and JSON-safe) that :meth:`load` turns back into this state."""
        return {
            "last": self.last,
            "rules": [[r.name, r.summary, r.step_metric] for r in self._rules],
            "special": self._special,
            "overrides": self.overrides,
        }

    @classmethod
    def load(cls, state: Mapping[str, Any]) -> Summarizer:
        """The summarizer :meth:`dump` gave (an empty one from ``{}``)."""
        summarizer = cls()
        for name, summary, step_metric in state.get("rules", []):
            summarizer.define(name, summary, step_metric)
        summarizer.last = dict(state.get("last", {}))
        summarizer._special = {k: list(v) for k, v in state.get("special", {}).items()}
        summarizer.overrides = dict(state.get("overrides", {}))
        return summarizer

    @property
    def has_rules(self) -> bool:
        return bool(self._rules)

    def define(self, name: str, summary: str = "last", step_metric: str | None = None) -> None:
        if summary not in SUMMARY_KINDS:
            raise ValueError(f"summary must be one of {SUMMARY_KINDS}, not {summary!r}")
        self._rules.append(_Rule(name, summary, step_metric))
        self._rule_of.clear()

    def rule(self, key: str) -> _Rule | None:
        """The rule for ``key``: an exact name wins, then the latest matching glob."""
        try:
            return self._rule_of[key]
        except KeyError:
            pass
        found: _Rule | None = None
        for rule in reversed(self._rules):
            if rule.name == key:
                found = rule
                break
        if found is None:
            for rule in reversed(self._rules):
                if fnmatch.fnmatchcase(key, rule.name):
                    found = rule
                    break
        self._rule_of[key] = found
        return found

    def step_metric(self, key: str) -> str | None:
        rule = self.rule(key)
        return rule.step_metric if rule else None

    def add(self, values: Mapping[str, Any]) -> None:
        """Account for one logged row."""
        self.last.update(values)
        if not self._rules:
            return
        for key, value in values.items():
            rule = self.rule(key)
            if rule is None or rule.summary == "last":
                continue
            self._aggregate(key, rule.summary, value)

    def _aggregate(self, key: str, kind: str, value: Any) -> None:
        state = self._special.get(key)
        if state is None or state[0] != kind:
            state = self._special[key] = [kind, None, 0.0, 0]
        if kind == "first":
            if state[3] == 0:
                state[1] = value
                state[3] = 1
            return
        if kind == "none" or isinstance(value, str):
            return
        number = float(value)
        if math.isnan(number):
            return
        if kind == "min":
            state[1] = number if state[1] is None else min(state[1], number)
        elif kind == "max":
            state[1] = number if state[1] is None else max(state[1], number)
        elif kind == "mean":
            state[2] += number
            state[3] += 1
            state[1] = state[2] / state[3]

    def values(self) -> dict[str, Any]:
        """The summary: computed values, with user overrides on top."""
        out: dict[str, Any] = {}
        for key, value in self.last.items():
            rule = self.rule(key) if self._rules else None
            if rule is None or rule.summary == "last":
                out[key] = value
                continue
            if rule.summary == "none":
                continue
            state = self._special.get(key)
            if state is not None and state[1] is not None:
                out[key] = state[1]
        out.update(self.overrides)
        return out
