"""Time on the training thread to log 16 images of 224x224x3 at one step: trackline vs W&B.

Each tool runs in its own fresh subprocess, in offline mode, writing into a temporary
directory. The timed call is what a training script writes::

    run.log({"images": [trackline.Image(a) for a in arrays]})     # trackline
    wandb.log({"images": [wandb.Image(a) for a in arrays]})        # W&B, WANDB_MODE=offline

The arrays (uint8, fresh random pixels each repetition) are made before the clock
starts. A few warm-up calls are left out of the statistics (the first one imports
the image libraries) and reported on their own. Between calls the script sleeps
``--gap`` seconds, the training the images are logged between. With ``--gap 0``
the next call competes with the previous one's background encoding. After the
last call the child checks what the tool stored.

    python bench/bench_media.py            # 50 repetitions per tool
    python bench/bench_media.py --quick    # 10 repetitions, for CI
    python bench/bench_media.py --json results.json

Targets: trackline's median <= 2 ms, and >= 10x less than W&B's.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import log_line, median, percentile, write_json

N_IMAGES = 16
SHAPE = (224, 224, 3)
WARMUP = 3
TARGET_MS = 2.0
TARGET_RATIO = 10.0
TOOLS = ("trackline", "wandb")


# -- the child: one tool in a fresh interpreter -------------------------------------------


def _arrays(rng: Any) -> list[Any]:
    import numpy as np

    return [rng.integers(0, 256, SHAPE, dtype=np.uint8) for _ in range(N_IMAGES)]


def child(tool: str, reps: int, gap: float, workdir: Path) -> dict[str, Any]:
    import numpy as np

    rng = np.random.default_rng(0)
    clock = time.perf_counter
    thread_clock = time.thread_time
    if tool == "trackline":
        os.environ["TRACKLINE_DIR"] = str(workdir)
        import trackline
        from trackline.media import Image

        run = trackline.init(project="bench-media")

        def log(arrays: list[Any], step: int) -> None:
            run.log({"images": [Image(a) for a in arrays]}, step=step)

        def finish() -> None:
            run.finish()

    else:
        os.environ.update(WANDB_MODE="offline", WANDB_SILENT="true", WANDB_DIR=str(workdir))
        import wandb

        wandb_run = wandb.init(project="bench-media")

        def log(arrays: list[Any], step: int) -> None:
            wandb_run.log({"images": [wandb.Image(a) for a in arrays]}, step=step)

        def finish() -> None:
            wandb_run.finish()

    wall: list[float] = []
    cpu: list[float] = []
    warmup: list[float] = []
    logged: list[list[Any]] = []
    for step in range(WARMUP + reps):
        arrays = _arrays(rng)
        time.sleep(gap)
        c0, t0 = thread_clock(), clock()
        log(arrays, step)
        t1, c1 = clock(), thread_clock()
        if step < WARMUP:
            warmup.append((t1 - t0) * 1e3)
        else:
            wall.append((t1 - t0) * 1e3)
            cpu.append((c1 - c0) * 1e3)
        if step == WARMUP + reps - 1:
            logged = arrays
    t0 = clock()
    finish()
    finish_ms = (clock() - t0) * 1e3
    checked = _check_trackline(run, logged, WARMUP + reps) if tool == "trackline" else None
    ordered = sorted(wall)
    return {
        "tool": tool,
        "version": _version(tool),
        "reps": reps,
        "median_ms": median(wall),
        "p90_ms": percentile(ordered, 90),
        "min_ms": ordered[0],
        "max_ms": ordered[-1],
        "thread_cpu_median_ms": median(cpu),
        "first_call_ms": warmup[0],
        "finish_ms": finish_ms,
        "stored_files": _count_files(workdir),
        "read_back": checked,
    }


def _version(tool: str) -> str:
    from importlib.metadata import version

    return version(tool)


def _check_trackline(run: Any, last: list[Any], steps: int) -> str:
    """Every step's 16 images recorded; the last step's PNGs decode to the arrays logged."""
    import numpy as np
    import PIL.Image
    import trackline

    local = trackline.open_run(run.dir)
    records = local.media("images")
    if [r.step for r in records] != list(range(steps)) or any(
        len(r.items) != N_IMAGES for r in records
    ):
        return "FAIL: records missing"
    for item, array in zip(records[-1].items, last, strict=True):
        with PIL.Image.open(run.dir / item["path"]) as image:
            if not np.array_equal(np.asarray(image), array):
                return "FAIL: pixels differ"
    return "ok"


def _count_files(workdir: Path) -> int:
    """PNG files the tool stored (trackline stores identical images once)."""
    return sum(1 for p in workdir.rglob("*.png") if p.is_file())


# -- the parent ------------------------------------------------------------------------------


def run_child(tool: str, reps: int, gap: float, timeout: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"bench-media-{tool}-") as workdir:
        command = [
            sys.executable,
            __file__,
            "--child",
            tool,
            "--reps",
            str(reps),
            "--gap",
            str(gap),
            "--workdir",
            workdir,
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACKLINE_", "WANDB_"))}
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} child failed ({done.returncode}):\n{done.stderr[-4000:]}")
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def table(results: dict[str, dict[str, Any]], gap: float) -> str:
    ours = results["trackline"]["median_ms"]
    lines = [
        f"log {N_IMAGES} images of {'x'.join(map(str, SHAPE))} uint8 at one step, "
        f"training-thread time per call, gap {gap * 1e3:.0f} ms between calls",
        "",
        f"{'tool':<10} {'version':<9} {'median ms':>10} {'p90 ms':>8} {'min ms':>8} "
        f"{'cpu ms':>8} {'1st ms':>8} {'finish ms':>10} {'files':>6} {'vs trackline':>13}",
    ]
    for tool, r in results.items():
        lines.append(
            f"{tool:<10} {r['version']:<9} {r['median_ms']:>10.3f} {r['p90_ms']:>8.3f} "
            f"{r['min_ms']:>8.3f} {r['thread_cpu_median_ms']:>8.3f} {r['first_call_ms']:>8.1f} "
            f"{r['finish_ms']:>10.1f} {r['stored_files']:>6} {r['median_ms'] / ours:>12.1f}x"
        )
    lines.append("")
    ok_time = ours <= TARGET_MS
    lines.append(
        f"{'PASS' if ok_time else 'FAIL'}  trackline median {ours:.3f} ms <= {TARGET_MS} ms"
    )
    if "wandb" in results:
        ratio = results["wandb"]["median_ms"] / ours
        lines.append(
            f"{'PASS' if ratio >= TARGET_RATIO else 'FAIL'}  W&B / trackline = {ratio:.1f}x "
            f">= {TARGET_RATIO:.0f}x"
        )
    read_back = results["trackline"]["read_back"]
    lines.append(f"{'PASS' if read_back == 'ok' else 'FAIL'}  trackline read-back: {read_back}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 repetitions per tool")
    parser.add_argument("--reps", type=int, default=None, help="timed calls per tool (50)")
    parser.add_argument("--gap", type=float, default=0.1, help="seconds between calls (0.1)")
    parser.add_argument(
        "--tools", default=",".join(TOOLS), help="comma-separated (trackline,wandb)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--child", choices=TOOLS, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    reps = args.reps or (10 if args.quick else 50)
    if args.child:
        print(json.dumps(child(args.child, reps, args.gap, args.workdir)))
        return 0
    tools = [t for t in args.tools.split(",") if t]
    if "trackline" not in tools:
        parser.error("--tools must include trackline (the ratio is against it)")
    results: dict[str, dict[str, Any]] = {}
    for tool in tools:
        log_line(f"bench_media: {tool}, {reps} calls ...")
        try:
            results[tool] = run_child(tool, reps, args.gap, timeout=600)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            if tool == "trackline":
                raise
            log_line(f"bench_media: {tool} skipped: {exc}")
    print(table(results, args.gap))
    if args.json:
        params = {"reps": reps, "gap_s": args.gap, "images": N_IMAGES, "shape": SHAPE}
        write_json(args.json, {"params": params, "results": results})
    ours = results["trackline"]
    passed = ours["median_ms"] <= TARGET_MS and ours["read_back"] == "ok"
    if "wandb" in results:
        passed = passed and results["wandb"]["median_ms"] / ours["median_ms"] >= TARGET_RATIO
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
