"""Wide rows on the training side: trackline beside W&B offline (issue 15's per-layer metrics).

Each tool in a fresh interpreter, in its own temporary directory: ``init`` offline, log rows of
2,000 and of 20,000 float keys (``layer007/block3/grad_norm``), each call timed alone (the
row is built before the clock starts), then ``finish`` timed, and the bytes it left on disk.
trackline's rows are read back and counted. Prints per row, per key and W&B ÷ trackline.

    python bench/bench_wide.py                # 1,000,000 points per width and tool, ~2 minutes
    python bench/bench_wide.py --quick        # 100,000 points per width: a smoke run
    python bench/bench_wide.py --tools trackline --json out.json

Ingest of the same rows by a server (trackline's beside MLflow's) is ``bench_server.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))

from _common import log_line, median, percentile, write_json  # noqa: E402

WIDTHS = (2_000, 20_000)
TOOLS = ("trackline", "wandb")


def keys_of(width: int) -> list[str]:
    names = ("grad_norm", "weight_norm", "update_ratio", "act_mean", "act_std")
    return [f"layer{j // 50:03d}/block{j // 5 % 10}/{names[j % 5]}" for j in range(width)]


def child(tool: str, width: int, rows: int, workdir: Path) -> dict[str, Any]:
    """In a fresh interpreter: log ``rows`` rows of ``width`` keys with ``tool``."""
    keys = keys_of(width)
    table = [{key: step + j * 1e-3 for j, key in enumerate(keys)} for step in range(rows)]
    if tool == "trackline":
        import trackline

        run = trackline.init(project="wide", dir=str(workdir), mode="offline")
        log, finish = run.log, run.finish
    else:
        import wandb

        run = wandb.init(project="wide", mode="offline", dir=str(workdir))
        log, finish = run.log, run.finish
    times = []
    clock = time.perf_counter_ns
    for step, row in enumerate(table):
        start = clock()
        log(row, step=step)
        times.append(clock() - start)
    started = time.perf_counter()
    finish()
    finish_s = time.perf_counter() - started
    size = sum(f.stat().st_size for f in workdir.rglob("*") if f.is_file())
    result: dict[str, Any] = {"log_ns": times, "finish_s": finish_s, "disk_bytes": size}
    if tool == "trackline":
        history = trackline.open_run(run.id, dir=str(workdir)).history()
        result["points_read"] = sum(len(row) - 2 for row in history)  # less _step, _time
    return result


def run_child(tool: str, width: int, rows: int, timeout: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"bench-wide-{tool}-") as tmp:
        workdir = Path(tmp)
        out = workdir / "result.json"
        env = dict(os.environ, WANDB_MODE="offline", WANDB_SILENT="true", WANDB_DIR=tmp)
        env.update(WANDB_CONFIG_DIR=f"{tmp}/wc", WANDB_CACHE_DIR=f"{tmp}/wk", WANDB_DATA_DIR=tmp)
        command = [sys.executable, str(HERE), "--child", tool, str(width), str(rows), str(out)]
        try:
            proc = subprocess.run(
                command, cwd=tmp, env=env, capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {timeout:.0f}s"}
        if proc.returncode != 0 or not out.exists():
            tail = proc.stderr.strip().splitlines()[-1:] or ["(no output)"]
            return {"error": f"exit {proc.returncode}: {tail[0]}"}
        result: dict[str, Any] = json.loads(out.read_text())
        return result


def summary(result: dict[str, Any], width: int, rows: int) -> dict[str, Any]:
    if "error" in result:
        return result
    times = sorted(result["log_ns"])
    out = {
        "rows": rows,
        "log_us_median": median(times) / 1000,
        "log_us_p99": percentile(times, 99) / 1000,
        "log_ns_per_key": median(times) / width,
        "log_s_total": sum(times) / 1e9,
        "finish_s": result["finish_s"],
        "disk_mb": result["disk_bytes"] / 1e6,
    }
    if "points_read" in result:
        out["points_read"] = result["points_read"]
        if result["points_read"] != width * rows:
            out["error"] = f"read back {result['points_read']:,} of {width * rows:,} points"
    return out


def render(results: dict[str, dict[str, Any]], tools: list[str]) -> str:
    lines = [
        "| rows of | measurement | " + " | ".join(tools) + " | W&B / trackline |",
        "|---|---|" + "---|" * len(tools) + "---|",
    ]
    fields = [
        ("log() per row, median (µs)", "log_us_median", "{:,.0f}"),
        ("log() per row, p99 (µs)", "log_us_p99", "{:,.0f}"),
        ("per key, median (ns)", "log_ns_per_key", "{:,.0f}"),
        ("all log() calls (s)", "log_s_total", "{:.2f}"),
        ("finish (s)", "finish_s", "{:.2f}"),
        ("on disk (MB)", "disk_mb", "{:.1f}"),
    ]
    for width in WIDTHS:
        cells = {tool: results.get(f"{tool}/{width}", {}) for tool in tools}
        for title, field, fmt in fields:
            row = [
                fmt.format(c[field]) if field in c else c.get("error", "-") for c in cells.values()
            ]
            mine, theirs = cells.get("trackline", {}), cells.get("wandb", {})
            ratio = "-"
            if field in mine and field in theirs and mine[field]:
                ratio = f"{theirs[field] / mine[field]:.1f}x"
            lines.append(f"| {width:,} keys | {title} | " + " | ".join(row) + f" | {ratio} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="100,000 points per width")
    parser.add_argument("--tools", default=",".join(TOOLS), help="trackline,wandb")
    parser.add_argument("--json", type=Path, help="also write every number to this file")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        tool, width, rows, out = args.child
        result = child(tool, int(width), int(rows), Path.cwd())
        Path(out).write_text(json.dumps(result))
        return 0
    points = 100_000 if args.quick else 1_000_000
    tools = [t for t in args.tools.split(",") if t in TOOLS]
    if "trackline" not in tools:
        tools.insert(0, "trackline")
    results: dict[str, dict[str, Any]] = {}
    for width in WIDTHS:
        rows = max(1, points // width)
        for tool in tools:
            log_line(f"bench_wide: {tool}, {rows:,} rows of {width:,} keys ...")
            results[f"{tool}/{width}"] = summary(run_child(tool, width, rows, 600), width, rows)
    print(render(results, tools))
    load = os.getloadavg()[0]
    print(
        f"\n- {points:,} points per width and tool; each tool in a fresh interpreter, offline; "
        f"load average {load:.1f} after."
    )
    if args.json:
        write_json(args.json, results)
    failed = [k for k, v in results.items() if k.startswith("trackline") and "error" in v]
    return 2 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
