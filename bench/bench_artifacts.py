"""Artifact upload throughput: a 500 MB (or 2 GB) checkpoint (random bytes) to a local server.

A trackline server (SQLite, local files) on loopback; the checkpoint is logged with
``run.log_artifact`` and shipped two ways, each timed from the ``log_artifact`` call
to the moment the server has every byte:

* ``sync``: an offline run, then a ``Shipper`` (what ``trackline sync`` runs) uploads it;
* ``online``: an online run; its agent ships the log and the file while the run lives;
* ``one PUT``: ``sync`` again with uploads in parts turned off (how files went before).

Files above 16 MB go up in parts (``server/routes_uploads.py``); the server's resident
memory is sampled while it receives (it should stay flat: parts are written, not held).

The limit is a plain ``shutil.copyfile`` of the same file on the same disk (the upload
also has to hash, send over loopback and write the file once more). Also reported:
the time ``log_artifact`` takes on the training thread (the snapshot copy), and a
second run logging the same content (nothing to upload: content-addressed).

    python bench/bench_artifacts.py            # 500 MB
    python bench/bench_artifacts.py --quick    # 50 MB
    python bench/bench_artifacts.py --size-mb 2048   # the issue's 2 GB case
    python bench/bench_artifacts.py --json results.json
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import log_line, write_json

ADMIN_KEY = "tl_bench_admin_key_0123456789"
MB = 1024 * 1024


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_server(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    import httpx

    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKLINE_")}
    env["TRACKLINE_ADMIN_KEY"] = ADMIN_KEY
    log = open(root / "server.log", "ab")  # noqa: SIM115 - handed to the child
    argv = [sys.executable, "-m", "trackline.server", "--port", str(port)]
    argv += ["--data-dir", str(root / "server")]
    process = subprocess.Popen(argv, stdout=log, stderr=log, env=env)
    log.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/api/v1/health", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"the server did not start; see {root / 'server.log'}")


class _PeakRss:
    """The most resident memory of a process (and its children) while the block runs."""

    def __init__(self, pid: int) -> None:
        import psutil

        self.process = psutil.Process(pid)
        self.base = self._rss()
        self.peak = self.base
        self._stop = False

    def _rss(self) -> int:
        total = self.process.memory_info().rss
        for child in self.process.children(recursive=True):
            total += child.memory_info().rss
        return int(total)

    def _watch(self) -> None:
        while not self._stop:
            self.peak = max(self.peak, self._rss())
            time.sleep(0.05)

    def __enter__(self) -> _PeakRss:
        import threading

        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop = True
        self._thread.join()


def _write_random(path: Path, size: int) -> None:
    with open(path, "wb") as file:
        left = size
        while left:
            chunk = os.urandom(min(left, 16 * MB))
            file.write(chunk)
            left -= len(chunk)


def _wait_complete(url: str, ref: str, timeout: float = 600) -> None:
    import trackline
    from trackline import ApiError

    deadline = time.monotonic() + timeout
    with trackline.Api(url, ADMIN_KEY) as api:
        while time.monotonic() < deadline:
            try:
                if api.artifact(ref).complete:
                    return
            except ApiError as exc:
                if exc.status != 404:
                    raise
            time.sleep(0.05)
    raise TimeoutError(f"{ref} not complete after {timeout}s")


def _log(project: str, path: Path, mode: str) -> tuple[Any, float]:
    import trackline

    run = trackline.init(project=project, mode=mode)
    artifact = trackline.Artifact("checkpoint", "model")
    artifact.add_file(path, name="model.ckpt")
    started = time.perf_counter()
    run.log_artifact(artifact)
    call = time.perf_counter() - started
    return run, call


def measure(size: int, root: Path) -> dict[str, Any]:
    from trackline._transport import Shipper

    source = root / "checkpoint.bin"
    _write_random(source, size)
    results: dict[str, Any] = {"size_mb": size / MB}

    started = time.perf_counter()
    shutil.copyfile(source, root / "copy.bin")
    copy = time.perf_counter() - started
    (root / "copy.bin").unlink()
    results["copyfile_s"] = copy
    log_line(f"shutil.copyfile: {copy:.2f}s = {size / MB / copy:.0f} MB/s (the limit)")

    process, url = _start_server(root)
    os.environ["TRACKLINE_DIR"] = str(root / "tl")
    try:
        # sync: an offline run, then the Shipper that `trackline sync` uses (in parts).
        os.environ.pop("TRACKLINE_SERVER", None)
        started = time.perf_counter()
        run, call = _log("bench-sync", source, "offline")
        run.finish()
        finished = time.perf_counter()
        with (
            _PeakRss(process.pid) as rss,
            Shipper(run.dir, url, ADMIN_KEY, live=False, budget=600) as shipper,
        ):
            while not shipper.pump(final=True):
                time.sleep(0.01)
        shipped = time.perf_counter()
        _wait_complete(url, "admin/bench-sync/checkpoint:latest")
        results.update(server_rss_base_mb=rss.base / MB, server_rss_peak_mb=rss.peak / MB)
        log_line(
            f"server RSS while receiving: {rss.base / MB:.0f} MB before, "
            f"{rss.peak / MB:.0f} MB at most"
        )

        # the same in one PUT (parts only above 1 TB): the way before uploads in parts
        _write_random(source, size)
        os.environ["TRACKLINE_UPLOAD_PART_MB"] = str(1 << 20)
        try:
            run, _ = _log("bench-put", source, "offline")
            run.finish()
            put_started = time.perf_counter()
            with (
                _PeakRss(process.pid) as put_rss,
                Shipper(run.dir, url, ADMIN_KEY, live=False, budget=600) as shipper,
            ):
                while not shipper.pump(final=True):
                    time.sleep(0.01)
            results["put_upload_s"] = time.perf_counter() - put_started
            results["put_server_rss_peak_mb"] = put_rss.peak / MB
        finally:
            os.environ.pop("TRACKLINE_UPLOAD_PART_MB")
        log_line(
            f"one PUT: upload {results['put_upload_s']:.2f}s = "
            f"{size / MB / results['put_upload_s']:.0f} MB/s, server RSS at most "
            f"{put_rss.peak / MB:.0f} MB"
        )
        results.update(
            sync_log_call_s=call,
            sync_finish_s=finished - started - call,
            sync_upload_s=shipped - finished,
            sync_total_s=shipped - started,
        )
        log_line(
            f"sync: log_artifact {call:.2f}s (training thread), hashing until finish "
            f"{finished - started - call:.2f}s, upload {shipped - finished:.2f}s "
            f"= {size / MB / (shipped - finished):.0f} MB/s; end to end "
            f"{shipped - started:.2f}s = {size / MB / (shipped - started):.0f} MB/s"
        )

        # online: the agent ships while the run lives.
        os.environ["TRACKLINE_SERVER"] = url
        os.environ["TRACKLINE_API_KEY"] = ADMIN_KEY
        _write_random(source, size)  # new content: a real upload
        started = time.perf_counter()
        run, call = _log("bench-online", source, "online")
        _wait_complete(url, "admin/bench-online/checkpoint:latest")
        total = time.perf_counter() - started
        run.finish()
        results.update(online_log_call_s=call, online_total_s=total)
        log_line(
            f"online: log_artifact {call:.2f}s, on the server after {total:.2f}s "
            f"= {size / MB / total:.0f} MB/s"
        )

        # the same content from another run: nothing is uploaded again
        started = time.perf_counter()
        run, call = _log("bench-online", source, "online")
        run.finish()
        _wait_complete(url, "admin/bench-online/checkpoint:latest")
        results["online_same_content_s"] = time.perf_counter() - started
        log_line(f"same content again, another run: {results['online_same_content_s']:.2f}s")
    finally:
        process.terminate()
        process.wait(30)
    results["sync_upload_mb_s"] = size / MB / results["sync_upload_s"]
    results["sync_total_mb_s"] = size / MB / results["sync_total_s"]
    results["online_mb_s"] = size / MB / results["online_total_s"]
    results["copyfile_mb_s"] = size / MB / copy
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="50 MB instead of 500 MB")
    parser.add_argument("--size-mb", type=int, default=None)
    parser.add_argument("--json", default=None, help="also write the numbers here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    size = (args.size_mb or (50 if args.quick else 500)) * MB
    root = Path(tempfile.mkdtemp(prefix="trackline-bench-artifacts-"))
    try:
        results = measure(size, root)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print(
        f"{size // MB} MB checkpoint: copyfile {results['copyfile_mb_s']:.0f} MB/s | "
        f"upload (sync) {results['sync_upload_mb_s']:.0f} MB/s, log_artifact -> on the server "
        f"{results['sync_total_mb_s']:.0f} MB/s | online {results['online_mb_s']:.0f} MB/s "
        f"| training thread {results['online_log_call_s']:.2f}s"
    )
    if args.json:
        write_json(Path(args.json), results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
