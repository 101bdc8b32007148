"""Following a run from a terminal: sparklines in ``show``, ``runs --watch`` and ``show --watch``
in a real pseudo-terminal of 80 columns, as over SSH."""

from __future__ import annotations

import fcntl
import math
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import trackline
from click.testing import CliRunner
from trackline._cli import main as cli
from trackline._sparkline import BARS, main_metrics, metric_series, sparkline

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")
CURSOR = re.compile(r"\x1b\[[0-9;?]*[ABGHJK]")
"""Cursor moves and erases: where a redraw starts a line anew."""


def test_sparkline_follows_the_values_and_fits_its_width() -> None:
    assert sparkline([0, 1, 2, 3, 4, 5, 6, 7], 8) == BARS
    assert sparkline(list(range(1000)), 10) == "▁▂▃▃▄▅▆▆▇█"
    assert len(sparkline(list(range(7)), 40)) == 7  # never wider than the points
    assert sparkline([2.0, 2.0, 2.0], 3) == BARS[3] * 3  # flat: middle, not bottom
    assert sparkline([1.0, math.nan, 3.0], 3) == BARS[0] + " " + BARS[-1]
    assert sparkline([math.inf, 1.0, 2.0], 3) == " " + BARS[0] + BARS[-1]
    assert sparkline([], 5) == "" and sparkline([1.0], 0) == ""


def test_main_metrics_are_the_most_logged_in_logging_order() -> None:
    rows = [
        {"_step": s, "_time": 0.0, "train/loss": 1.0 / (s + 1), "lr": 0.1, "flag": True}
        for s in range(10)
    ] + [{"_step": 10, "val/acc": 0.9, "note": "text"}]
    series = metric_series(rows)
    assert set(series) == {"train/loss", "lr", "val/acc"}  # bools and strings are not curves
    assert main_metrics(series) == ["train/loss", "lr", "val/acc"]
    assert main_metrics(series, limit=1) == ["train/loss"]
    assert main_metrics(series, ["val/*", "l*"]) == ["val/acc", "lr"]


def test_show_draws_sparklines_at_80_columns_and_names_stay_text() -> None:
    run = trackline.init(project="watch", name="[bold]not-markup", mode="offline")
    for step in range(200):
        run.log({"train/loss": math.exp(-step / 50), "val/acc": 1 - math.exp(-step / 50)})
    run.finish()
    result = CliRunner().invoke(cli, ["show", run.id], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert "[bold]not-markup" in result.output
    lines = result.output.splitlines()
    assert all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]
    loss = next(line for line in lines if line.startswith("train/loss"))
    curve = max(re.findall(f"[{BARS}]+", loss), key=len)
    assert len(curve) >= 20 and curve[0] == BARS[-1] and curve[-1] == BARS[0]
    picked = CliRunner().invoke(cli, ["show", run.id, "-m", "val/*"], env={"COLUMNS": "80"})
    assert any(line.startswith("val/acc") for line in picked.output.splitlines())
    assert not any(line.startswith("train/loss ") for line in picked.output.splitlines())


class Terminal:
    """A command in a real pseudo-terminal of ``columns`` x ``rows``, as ssh gives one."""

    def __init__(self, args: list[str], cwd: Path, columns: int = 80, rows: int = 40) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        env["TERM"] = "xterm-256color"
        self.proc = subprocess.Popen(
            args, cwd=cwd, env=env, stdin=slave, stdout=slave, stderr=slave, start_new_session=True
        )
        os.close(slave)
        self.output = ""

    def read_until(self, done: Callable[[str], bool], timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while not done(self.output):
            left = deadline - time.monotonic()
            assert left > 0, "timed out; the terminal shows:\n" + "\n".join(self.lines())
            ready, _, _ = select.select([self.master], [], [], min(left, 0.5))
            if ready:
                try:
                    self.output += os.read(self.master, 65536).decode(errors="replace")
                except OSError:  # the command exited and closed the terminal
                    if self.proc.poll() is not None:
                        break
        return self.output

    def lines(self) -> list[str]:
        """Every line the terminal was given, colours left out."""
        return ANSI.sub("", CURSOR.sub("\n", self.output)).split("\n")

    def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(timeout=30)
        self.read_until(lambda _: self.proc.poll() is not None, timeout=5)
        return code

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)


TRAINING = textwrap.dedent(
    """
    import math, sys, time
    from pathlib import Path
    import trackline

    run = trackline.init(project="watch", name="slow-train", mode="offline")
    step = 0
    while not Path(sys.argv[1]).exists():
        run.log({"train/loss": math.exp(-step / 20), "val/acc": 1 - math.exp(-step / 20)})
        step += 1
        time.sleep(0.05)
    run.finish()
    """
)


def test_runs_watch_follows_a_running_run_over_an_80_column_terminal(
    tmp_path: Path, trackline_env: Path
) -> None:
    stop = tmp_path / "stop"
    training = subprocess.Popen([sys.executable, "-c", TRAINING, str(stop)], cwd=tmp_path)
    term = Terminal(
        [sys.executable, "-m", "trackline", "runs", "--watch", "--interval", "0.3"], tmp_path
    )
    try:
        # The run appears as running, with a curve of its loss that grows as it logs.
        term.read_until(lambda out: "slow-train" in out and "running" in out and BARS[-1] in out)
        seen = len(term.output)
        term.read_until(lambda out: len(out) > seen and "train/loss" in out[seen:])
        stop.touch()
        assert training.wait(timeout=60) == 0
        term.read_until(lambda out: "finished" in out[seen:])
        assert term.interrupt() == 0
        lines = term.lines()
        assert not any("Traceback" in line or "Aborted" in line for line in lines)
        too_wide = [line for line in lines if len(line) > 80]
        assert not too_wide, too_wide
    finally:
        stop.touch()
        training.wait(timeout=60)
        term.close()


def test_show_watch_redraws_until_the_run_ends_then_exits(
    tmp_path: Path, trackline_env: Path
) -> None:
    stop = tmp_path / "stop"
    training = subprocess.Popen([sys.executable, "-c", TRAINING, str(stop)], cwd=tmp_path)
    term = None
    try:
        runs = trackline_env / "runs"
        deadline = time.monotonic() + 60
        while not (runs.exists() and any(runs.glob("*/main.tlog"))):
            assert time.monotonic() < deadline, "the training never started its run"
            time.sleep(0.1)
        term = Terminal(
            [
                sys.executable,
                "-m",
                "trackline",
                "show",
                "slow-train",
                "--watch",
                "--interval",
                "0.3",
            ],
            tmp_path,
        )
        term.read_until(lambda out: "state=running" in ANSI.sub("", out) and BARS[-1] in out)
        stop.touch()
        assert term.proc.wait(timeout=60) == 0  # exits by itself once the run finished
        term.read_until(lambda out: "state=finished" in ANSI.sub("", out), timeout=5)
    finally:
        stop.touch()
        training.wait(timeout=60)
        if term is not None:
            term.close()
