"""Chaos harness: trackline's fault scenarios end to end against a real server.

    python tools/chaos.py [--quick] [--backend sqlite|postgres|both] [--strict NAMES|all]

Each scenario (see ``_chaos_scenarios.py``) runs a real training process, its
agent and a real server on SQLite or PostgreSQL, breaks something, and counts
what the training loop logged against what the server's query API returns. The
table says, per scenario and backend: rows logged, rows on the server, lost,
duplicated, peak RSS (of the server or the SDK, whichever the fault strains) and
the verdict. The exit status is non-zero if a scenario of the strict list fails.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _chaos_lab import ChaosError, Lab, Postgres, ServerProcess, postgres_available
from _chaos_scenarios import FULL, QUICK, SCENARIOS, Outcome

#: Scenarios that must pass (exit status); the others are reported but tolerated.
STRICT = (
    "kill_training",
    "kill_agent",
    "kill_server",
    "server_down",
    "kill_both",
    "disk_full",
    "private_run",
    "gzip_bomb",
)
BACKENDS = ("sqlite", "postgres")


@dataclass(frozen=True)
class Result:
    scenario: str
    backend: str
    outcome: Outcome
    seconds: float
    error: str | None = None

    @property
    def verdict(self) -> str:
        if self.error is not None:
            return "ERROR"
        if self.outcome.skipped is not None:
            return "SKIP"
        return "FAIL" if self.outcome.problems else "ok"

    @property
    def detail(self) -> str:
        if self.error is not None:
            return self.error
        if self.outcome.skipped is not None:
            return self.outcome.skipped
        return "; ".join(self.outcome.problems + self.outcome.notes)


def run_backend(
    backend: str,
    root: Path,
    database_url: str | None,
    quick: bool = True,
    only: Iterable[str] = SCENARIOS,
    report: Callable[[Result], None] = lambda result: None,
) -> list[Result]:
    """Every scenario in ``only`` against one server on ``database_url`` (None: SQLite)."""
    server = ServerProcess(root / "server", database_url=database_url)
    size = QUICK if quick else FULL
    results: list[Result] = []
    try:
        for name in only:
            if server.process is None or server.process.poll() is not None:
                server.start()
            lab = Lab(root / name, server)
            started = time.monotonic()
            error = None
            try:
                outcome = SCENARIOS[name](lab, size)
            except ChaosError as exc:
                outcome, error = Outcome(), str(exc)
            except Exception as exc:
                outcome, error = Outcome(), f"{exc!r} at {traceback.format_exc(limit=-1)}"
            finally:
                lab.cleanup()
            results.append(Result(name, backend, outcome, time.monotonic() - started, error))
            report(results[-1])
    finally:
        server.stop()
    return results


COLUMNS = ("scenario", "backend", "logged", "on server", "lost", "dup", "peak RSS", "verdict")


def row(result: Result) -> tuple[str, ...]:
    out = result.outcome

    def num(value: int | None) -> str:
        return "-" if value is None else str(value)

    rss = "-" if out.peak_rss is None else f"{out.peak_rss / 2**20:.0f} MB {out.rss_of}"
    return (
        result.scenario,
        result.backend,
        num(out.logged),
        num(out.on_server),
        num(out.lost),
        num(out.duplicated),
        rss,
        result.verdict,
    )


def table(results: list[Result]) -> str:
    """The results as a plain-text table, with each scenario's details below it."""
    rows = [COLUMNS, *(row(r) for r in results)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append("")
    for result in results:
        if result.detail:
            lines.append(
                f"{result.scenario}/{result.backend} ({result.seconds:.0f}s): {result.detail}"
            )
    return "\n".join(lines)


def failed(results: list[Result], strict: Iterable[str]) -> list[Result]:
    """Results of strict scenarios that did not pass (a skip is not a pass)."""
    names = set(strict)
    return [r for r in results if r.scenario in names and r.verdict != "ok"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the bounded form (CI, tests)")
    parser.add_argument("--backend", choices=(*BACKENDS, "both"), default="both")
    parser.add_argument(
        "--strict",
        default=",".join(STRICT),
        help="comma-separated scenarios whose failure fails the run, or 'all'",
    )
    parser.add_argument("--only", help="comma-separated scenarios to run (default: all)")
    args = parser.parse_args(argv)
    strict = SCENARIOS if args.strict == "all" else [s for s in args.strict.split(",") if s]
    only = args.only.split(",") if args.only else list(SCENARIOS)
    unknown = sorted(set(strict) - set(SCENARIOS) | set(only) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(unknown)}")
    backends = BACKENDS if args.backend == "both" else (args.backend,)
    root = Path(tempfile.mkdtemp(prefix="trackline-chaos-"))
    results: list[Result] = []

    def progress(result: Result) -> None:
        print(f"{result.scenario}/{result.backend}: {result.verdict}", flush=True)

    try:
        for backend in backends:
            if backend == "sqlite":
                results += run_backend(backend, root / backend, None, args.quick, only, progress)
                continue
            if not postgres_available():
                print("postgres: no PostgreSQL server binaries; skipped", flush=True)
                continue
            cluster = Postgres().start()
            try:
                url = cluster.new_database()
                results += run_backend(backend, root / backend, url, args.quick, only, progress)
            finally:
                cluster.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print()
    print(table(results))
    bad = failed(results, strict)
    if bad:
        print(f"\nstrict scenarios failed: {', '.join(f'{r.scenario}/{r.backend}' for r in bad)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
