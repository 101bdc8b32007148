"""The training process of a chaos scenario: logs ``--steps`` rows, counting returned calls.

The count of ``run.log`` calls that have returned lives in a shared memory map
(``--counter``), which outlives a SIGKILL of this process: the harness reads it
to know how many rows the caller was told were logged. The first line on stdout
is ``<run dir> <agent pid or 0>``.
"""

from __future__ import annotations

import argparse
import mmap
import struct
import time
from pathlib import Path

#: Each row carries this much text, so that a small disk fills after a few thousand rows.
PAD = "p" * 200


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--project", required=True)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--counter", type=Path, required=True)
    parser.add_argument("--rate", type=float, default=5000.0, help="rows per second at most")
    parser.add_argument("--pad", action="store_true", help="add 200 characters of text per row")
    parser.add_argument("--save", type=Path, help="a file to save with the run (a blob)")
    parser.add_argument("--hold", action="store_true", help="never finish: wait to be killed")
    args = parser.parse_args()

    import trackline

    args.counter.write_bytes(bytes(8))
    with open(args.counter, "r+b") as file:
        counter = mmap.mmap(file.fileno(), 8)
    run = trackline.init(project=args.project)
    agent = run._agent
    print(run.dir, agent.pid if agent is not None else 0, flush=True)
    if args.save is not None:
        run.save(str(args.save))
    started = time.monotonic()
    for step in range(args.steps):
        row: dict[str, object] = {"x": float(step)}
        if args.pad:
            row["pad"] = PAD
        run.log(row, step=step)
        struct.pack_into("<q", counter, 0, step + 1)
        ahead = (step + 1) / args.rate - (time.monotonic() - started)
        if ahead > 0.001:
            time.sleep(ahead)
    print("logged", flush=True)
    if args.hold:
        time.sleep(3600)
    run.finish()
    print("finished", flush=True)


def read_counter(path: Path) -> int:
    """How many ``log`` calls had returned (readable while the process runs or after it died)."""
    data = path.read_bytes()
    return int(struct.unpack_from("<q", data, 0)[0]) if len(data) >= 8 else 0


if __name__ == "__main__":
    main()
