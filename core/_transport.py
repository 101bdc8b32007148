"""Shipping a run directory to a server: log shipping with httpx.

The run log on disk is the only buffer. A :class:`Shipper` reads from the
server's committed offset of each stream (``main.tlog``, ``system.tlog``,
``console.tlog``),
sends whole frames in compressed batches, and moves on with the offset the
server answers; a lost answer is harmless (the server acknowledges what it
has without applying it twice) and a 409 says where to go on from. Files and
media named by the records are uploaded by content hash when the server says
it lacks them: a file above ``TRACKLINE_UPLOAD_PART_MB`` (16) in parts of the server's
part size, a few at once, resumed where it stopped after a kill of either side (see
``server/routes_uploads.py``); an older server without uploads in parts gets one PUT.

``pump`` never raises and never sleeps: on a connection error, a 5xx or a 429
it schedules the next attempt (exponential backoff with jitter, capped; the
server's ``Retry-After`` when it sends one) and returns ``False`` at once; the
caller (the agent, ``trackline sync``) calls again. A full storage quota (507)
is warned about once and retried at the longest backoff: the run directory
keeps the data until the server takes it. Progress goes to ``upload.json`` in
the run directory for ``trackline status``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import re
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, TypeVar

import httpx

from . import _credentials, _ranks
from . import _wire_types as wt
from ._deflate import deflate
from ._names import RUN_ID
from ._settings import env_float
from ._warn import warn_once
from .artifacts import sha256_file
from .records import RunStart
from .runlog import (
    FRAME,
    HEADER_SIZE,
    MAX_FRAME,
    MAX_REREADS,
    Scan,
    check_header,
    data_end,
    data_size,
    iter_frames,
    scan_frames,
    torn,
)

#: ``console.tlog`` last: a server too old to take it refuses that stream alone.
STREAMS = ("main", "system", "console")
PROGRESS_FILE = "upload.json"
_RUN_ID = re.compile(RUN_ID)
#: Statuses worth retrying: the server is busy, restarting or behind a proxy that is.
_TRANSIENT = {408, 425, 429, 500, 502, 503, 504}
_CHUNK = 1 << 20
#: Shipping after the fact, a request's log bytes grow until they compress to about this
#: many, up to ``SYNC_GROW_TO`` (the server's default limits: 64 MiB compressed, 512 MiB
#: decompressed; it decodes a range a body at a time, so its memory does not grow too) ...
SYNC_COMPRESSED = 24 << 20
SYNC_GROW_TO = 128 << 20
#: ... and a grown request that compresses to more than this is cut back to the usual size.
SYNC_COMPRESSED_MAX = 48 << 20
#: The log bytes whose ratio sizes the first request of a backlog.
SAMPLE = 4 << 20
#: Artifact files in a run directory, each named by its sha256 (see ``trackline.artifacts``).
ARTIFACT_BLOBS = "artifacts/blobs"
#: How long a live run waits before it retries a request the server refused (401, 403, ...).
RETRY_REFUSED = 60.0
#: The longest ``Retry-After`` obeyed, in seconds.
RETRY_AFTER_MAX = 60.0
#: Parts of one file sent at once.
PART_WORKERS = 4
_MIB = 1024 * 1024
T = TypeVar("T")


class PermanentError(Exception):
    """The server refused a request in a way that retrying will not fix."""


def _knob(name: str, default: float) -> float:
    try:
        return env_float(name, default)
    except ValueError:
        return default


class Shipper:
    """Ships one run directory; see the module docstring.

    Args:
        run_dir: the run's directory (``main.tlog``, ``system.tlog``, ``files/``).
        server: the server's URL.
        api_key: default ``TRACKLINE_API_KEY`` or the key stored by ``trackline login``.
        live: the run is running (heartbeats are sent; ``trackline sync`` passes False).
        batch_kb: the most log bytes per request (``TRACKLINE_UPLOAD_BATCH_KB``, 4096); a
            run shipped after the fact (``live=False``, ``trackline sync``) sends up to
            ``TRACKLINE_SYNC_BATCH_KB`` (32768) if that is more and ``batch_kb`` is not
            given: a wide row (thousands of keys) then gives each key hundreds of
            points per request.
        batch_ms: how long new bytes may wait to fill a batch (``TRACKLINE_UPLOAD_BATCH_MS``, 0).
        heartbeat: seconds between heartbeats (``TRACKLINE_HEARTBEAT_INTERVAL``, 15).
        budget: the most seconds one ``pump`` spends sending.
        rank: the directory is rank ``rank``'s of a distributed run (``runs/<id>/ranks/<k>``):
            its logs go to the run's streams ``main.<k>``, ``system.<k>``, ``console.<k>``.
    """

    def __init__(
        self,
        run_dir: str | os.PathLike[str],
        server: str,
        api_key: str | None = None,
        *,
        live: bool = True,
        batch_kb: float | None = None,
        batch_ms: float | None = None,
        heartbeat: float | None = None,
        backoff_max: float | None = None,
        budget: float = 5.0,
        transport: httpx.BaseTransport | None = None,
        rank: int | None = None,
    ) -> None:
        self.run_dir = Path(run_dir)
        #: Stream names on the server, by log file (``main`` -> ``main.3`` for rank 3).
        self.remote = {s: _ranks.stream_name(s, rank) for s in STREAMS}
        self.rank = rank
        self.server = _credentials.normalize(server)
        self.api_key = api_key or _credentials.api_key(self.server)
        self.live = live
        self.batch_bytes = int(1024 * (batch_kb or _knob("TRACKLINE_UPLOAD_BATCH_KB", 4096)))
        #: Log bytes a request may grow to where they compress well (``_batch_limit``).
        self.grow_to = self.batch_bytes
        if not live and batch_kb is None:
            sync_kb = _knob("TRACKLINE_SYNC_BATCH_KB", 32768)
            self.batch_bytes = max(self.batch_bytes, int(1024 * min(sync_kb, 60 * 1024)))
            self.grow_to = max(self.batch_bytes, SYNC_GROW_TO)
        #: Per stream, log bytes per compressed byte of its last request (none yet: absent).
        #: Per stream: a system stream's ratio in between changed the main stream's limit,
        #: and its range read ahead (``_prefetch``) was thrown away.
        self._ratios: dict[str, float] = {}
        #: Shipping after the fact: the next range, read and deflated while the server
        #: applies this one (``_prefetch``): per stream, (offset, grow_to) and its future.
        self._next: dict[str, tuple[tuple[int, int], Future[_Batch]]] = {}
        self._reader: ThreadPoolExecutor | None = None
        self.batch_seconds = (
            batch_ms if batch_ms is not None else _knob("TRACKLINE_UPLOAD_BATCH_MS", 0)
        ) / 1000
        self.heartbeat_interval = (
            heartbeat if heartbeat is not None else _knob("TRACKLINE_HEARTBEAT_INTERVAL", 15.0)
        )
        self.backoff_max = (
            backoff_max if backoff_max is not None else _knob("TRACKLINE_UPLOAD_BACKOFF_MAX", 30.0)
        )
        self.budget = budget
        #: Files larger than this go in parts (the server's part size).
        self.part_threshold = int(_knob("TRACKLINE_UPLOAD_PART_MB", 16) * _MIB)
        #: Files being sent in parts: run-dir path -> [bytes the server has, size].
        self.uploading: dict[str, list[int]] = {}
        headers = {"user-agent": "trackline-shipper"}
        if self.api_key:
            headers["authorization"] = f"Bearer {self.api_key}"
        self._client = httpx.Client(
            base_url=self.server + "/api/v1",
            headers=headers,
            timeout=httpx.Timeout(60.0, connect=5.0),
            transport=transport,
        )
        self.run_id: str | None = None
        self.committed: dict[str, int] | None = None
        self.sizes: dict[str, int] = dict.fromkeys(STREAMS, 0)
        self.caught_up: dict[str, bool] = dict.fromkeys(STREAMS, False)
        self.failed: dict[str, str] = {}
        self.wanted: dict[str, str | None] = {}  # run-dir path -> sha256 (None: unknown)
        self.files_failed: dict[str, str] = {}
        self.error: str | None = None
        self.failures = 0
        self._retry_at = 0.0
        self._waiting_since: dict[str, float] = {}
        self._last_heartbeat = 0.0
        self._hashes: dict[str, tuple[tuple[int, int], str]] = {}
        self._progress_written: str = ""
        self._failed_at = 0.0
        #: A stream was refused while the run was live: the end of the run tries it once more.
        self._failed_live = False
        #: Per stream, the digest of its log's header and first frame (``_log_head``).
        self._heads: dict[str, str] = {}
        #: Streams the server had more of than the file, after asking again (``_ship_stream``).
        self._past_end: set[str] = set()
        self._verified = False

    # -- the loop's entry point ----------------------------------------------------------

    def pump(self, final: bool = False) -> bool:
        """Ship what is new; ``True`` when everything on disk is on the server."""
        try:
            if time.monotonic() < self._retry_at:
                return False
            done = self._pump(final)
            self.failures = 0
            self.error = None if not self.failed else self.error
            return done
        except (httpx.TransportError, _Transient) as exc:
            self._schedule_retry(exc)
            return False
        except Exception as exc:  # never into the caller: note it and try again later
            self._schedule_retry(exc)
            return False
        finally:
            with contextlib.suppress(Exception):
                self._write_progress()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._write_progress()
        with contextlib.suppress(Exception):
            self._client.close()
        if self._reader is not None:
            self._reader.shutdown(wait=True, cancel_futures=True)
            self._reader = None
            self._next = {}

    def __enter__(self) -> Shipper:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def done(self) -> bool:
        """Every stream caught up (or refused for good) and no file left to upload."""
        streams = all(self.caught_up[s] or s in self.failed for s in STREAMS)
        return streams and not self.wanted

    def progress(self) -> tuple[int, int]:
        """(bytes on the server, bytes on disk) over both streams."""
        committed = self.committed or {}
        total = sum(self.sizes.values())
        shipped = sum(min(committed.get(s, 0), self.sizes[s]) for s in STREAMS)
        return shipped, total

    # -- internals -------------------------------------------------------------------------

    def _schedule_retry(self, exc: BaseException) -> None:
        self.failures += 1
        self.error = f"{type(exc).__name__}: {exc}"
        delay = min(self.backoff_max, 0.25 * 2 ** min(self.failures, 20))
        delay *= random.uniform(0.5, 1.0)
        if isinstance(exc, _Transient) and exc.retry_after is not None:
            delay = exc.retry_after
        self._retry_at = time.monotonic() + delay

    def _pump(self, final: bool) -> bool:
        started = time.monotonic()
        if self.failed and (
            (not final and started - self._failed_at > RETRY_REFUSED)
            or (final and self._failed_live)
        ):
            # A live run may get a valid key or project later: try again now and then, and
            # once more when the run has ended (it may end before RETRY_REFUSED has passed).
            self.failed.clear()
            self.committed = None
            self._failed_live = False
        try:
            if self.run_id is None:
                self.run_id = self._find_run_id()
            if self.committed is None:
                self._fetch_offsets()
        except PermanentError as exc:
            self.error = str(exc)
            for stream in STREAMS:
                self.failed.setdefault(stream, str(exc))
            self._failed_at = started
            self._failed_live = not final
            return self.done
        assert self.committed is not None
        for stream in STREAMS:
            if stream in self.failed:
                continue
            try:
                self._ship_stream(stream, final, started)
            except PermanentError as exc:
                self.failed[stream] = str(exc)
                self.error = f"{stream}: {exc}"
                self._failed_at = started
                self._failed_live = not final
        self._upload_files(started)
        if self.live and not final:
            self._heartbeat()
        if final and self.done and not self._verified:
            # Before saying "all shipped", ask the server: it may have lost what it had.
            self._verified = True
            expected = dict(self.committed)
            self._fetch_offsets()
            if any(self.committed.get(s, 0) < expected[s] for s in STREAMS if s not in self.failed):
                self._verified = False
                return False
        return self.done

    def _find_run_id(self) -> str:
        """The run id from the start record (the directory's name before there is one)."""
        path = self.run_dir / "main.tlog"
        with contextlib.suppress(OSError, ValueError):
            with open(path, "rb") as file:
                data = file.read(HEADER_SIZE + (1 << 16))
            check_header(data)
            for frame in iter_frames(memoryview(data)[HEADER_SIZE:], HEADER_SIZE):
                if type(frame.record) is RunStart:
                    run_id = frame.record.run_id
                    if _RUN_ID.match(run_id):
                        return run_id
                break
        name = self.run_dir.resolve().name
        if not _RUN_ID.match(name):
            raise PermanentError(f"cannot tell the run id of {self.run_dir}")
        return name

    def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response = self._client.request(method, url, **kwargs)
        status = response.status_code
        if status == 507:
            message = f"{method} {url}: HTTP 507 {_detail(response)}"
            warn_once("quota", f"trackline: the server's storage quota is full ({message})")
            raise _Transient(message, self.backoff_max)
        if status in _TRANSIENT or status >= 500:
            raise _Transient(
                f"{method} {url}: HTTP {status} {_detail(response)}", retry_after(response)
            )
        return response

    def _fetch_offsets(self) -> None:
        response = self._request("GET", f"/runs/{self.run_id}/streams")
        if response.status_code == 404:
            self.committed = dict.fromkeys(STREAMS, 0)
            return
        if response.status_code == 410:
            raise self._deleted(response)
        if response.status_code != 200:
            raise PermanentError(f"HTTP {response.status_code}: {_detail(response)}")
        body = _decoded(response, wt.Offsets)
        self.committed = {s: body.offsets.get(self.remote[s], 0) for s in STREAMS}
        self._want(body.missing)

    def _deleted(self, response: httpx.Response) -> PermanentError:
        """The run was deleted for good on the server: say so once; the local copy stays."""
        message = f"{_detail(response)} (its local copy stays in {self.run_dir})"
        warn_once(f"purged:{self.run_id}", f"trackline: {message}")
        return PermanentError(message)

    def _want(self, missing: list[wt.WantedFile]) -> None:
        if self.rank:  # the files the run names are rank 0's, in its directory
            return
        for item in missing:
            if item.path not in self.files_failed:
                self.wanted[item.path] = item.sha256

    def _ship_stream(self, stream: str, final: bool, started: float) -> None:
        assert self.committed is not None
        path = self.run_dir / f"{stream}.tlog"
        while True:
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                size = 0
            self.sizes[stream] = size
            offset = self.committed[stream]
            if offset > size:
                if stream in self._past_end:  # asked again: it is so
                    raise PermanentError(
                        f"the server holds {offset:,} bytes of run {self.run_id}'s {stream} "
                        f"log, more than this one has ({size:,}): the run was begun by "
                        "another run log (on another machine, or its id was used twice), so "
                        "nothing of this one is uploaded. To continue that run, copy its "
                        "directory from the machine that logged it; else log under a new id"
                    )
                self._past_end.add(stream)  # the server may have lost a write lock: ask again
                self.committed = None
                raise _Transient(f"{stream}: committed offset {offset} is past the end of the file")
            self._past_end.discard(stream)
            limit = self._batch_limit(stream, size - offset)
            packed: bytes | None = None
            prefetched = self._prefetched(stream, offset)
            # The first request of a backlog: read a sample, measure how it compresses,
            # and read as many bytes as that allows.
            sampling = prefetched is None and stream not in self._ratios and self.grow_to > limit
            if prefetched is not None:
                data, more, packed = prefetched
            elif size > offset:
                first = min(limit, SAMPLE) if sampling else limit
                data, more = _read_batch(path, offset, first)
            else:
                data, more = b"", False
            if more and sampling:
                sample = data[:SAMPLE]
                self._ratios[stream] = len(sample) / max(1, len(zlib.compress(sample, 1)))
                grown = self._batch_limit(stream, size - offset)
                if grown > first:
                    data, more = _read_batch(path, offset, grown)
            if size > offset + len(data):  # a mapped log's reserved zeros are not data
                # A batch the limit did not cut took every whole frame there is.
                self.sizes[stream] = data_size(path) if more else offset + len(data)
            if not data:
                self.caught_up[stream] = True
                self._waiting_since.pop(stream, None)
                return
            self.caught_up[stream] = False
            if not final and len(data) < self.batch_bytes and self.batch_seconds > 0:
                first_seen = self._waiting_since.setdefault(stream, time.monotonic())
                if time.monotonic() - first_seen < self.batch_seconds:
                    return
            self._waiting_since.pop(stream, None)
            self._post(stream, offset, data, self.live and not final, packed, more)
            if not final and not more:
                # Live: what the run logs meanwhile goes with the next pump (a second later),
                # not in a request of its own every few milliseconds: a writer logging flat
                # out would otherwise keep its agent and the server busy with tiny batches.
                return
            if time.monotonic() - started > self.budget:
                return

    def _batch_limit(self, stream: str, left: int = 0) -> int:
        """Log bytes to read for the next request: ``batch_bytes``, or, shipping after the
        fact, as many as compress to about ``SYNC_COMPRESSED`` at the last request's
        ratio, up to ``grow_to``, and the rest of the log (``left`` bytes) when that is
        under a quarter more. Rows of thousands of keys compress ~6x (their key names
        repeat): a 32 MiB request held ~40 rows of 20,000 keys, and the server's writes
        per key and request were most of their ingest."""
        ratio = self._ratios.get(stream, 1.0)
        limit = max(self.batch_bytes, min(self.grow_to, int(SYNC_COMPRESSED * ratio)))
        if not self.live and limit < left <= limit + limit // 4:
            # What ``left`` there is past this range is short: it goes along. On its own it
            # cost the server its writes per key again (a 20,000-key run's last 8 MiB took
            # a fifth of its ingest).
            return left
        return limit

    def _prefetched(self, stream: str, offset: int) -> _Batch | None:
        """The range at ``offset`` if ``_prefetch`` read it, and requests may still be
        as large as they were then. Its size is as good as the one the ratio of the
        request since gives (when that moved the limit by a few bytes, the range was
        thrown away and read again, nearly every time)."""
        ahead = self._next.pop(stream, None)
        if ahead is None:
            return None
        key, future = ahead
        # Another offset: the server answered otherwise. Another ``grow_to``: it refused
        # a request that large (413).
        if key != (offset, self.grow_to):
            future.cancel()
            return None
        return future.result()

    def _prefetch(self, stream: str, offset: int) -> None:
        """Read and deflate the range at ``offset`` in a thread, while this request is
        applied: shipping after the fact, the client's deflate and the server's apply
        would otherwise take turns (zlib lets go of the GIL)."""
        if self._reader is None:
            self._reader = ThreadPoolExecutor(1, thread_name_prefix="trackline-read")
        limit = self._batch_limit(stream, self.sizes[stream] - offset)
        path = self.run_dir / f"{stream}.tlog"
        future = self._reader.submit(_packed_batch, path, offset, limit)
        self._next[stream] = ((offset, self.grow_to), future)

    def _post(
        self,
        stream: str,
        offset: int,
        data: bytes,
        live: bool,
        packed: bytes | None = None,
        more: bool = False,
    ) -> None:
        """Send ``data`` (``packed``: deflated already); ``more``: the log goes on past it."""
        assert self.committed is not None
        headers = {"content-encoding": "deflate", "content-type": "application/octet-stream"}
        if live:
            headers["x-trackline-live"] = "1"
        # Not read ahead (a backlog's first range): the server waits for it, so after the
        # fact it is deflated on every core. A live agent keeps to one thread.
        threads = 1 if self.live else None
        if packed is None:
            packed = deflate(data, threads)
        self._ratios[stream] = len(data) / max(1, len(packed))
        if len(packed) > SYNC_COMPRESSED_MAX and len(data) > self.batch_bytes:
            # Grown on a better ratio than these bytes have: send fewer of them.
            data = data[: _frames_end(data, offset, self.batch_bytes)]
            packed = deflate(data, threads)
            more = True
        if more and not self.live:
            self._prefetch(stream, offset + len(data))
        params: dict[str, Any] = {"offset": offset}
        head = self._heads.get(stream) or _log_head(self.run_dir / f"{stream}.tlog")
        if head is not None:  # the server refuses a range of another log than it began with
            self._heads[stream] = params["head"] = head
        response = self._request(
            "POST",
            f"/runs/{self.run_id}/streams/{self.remote[stream]}",
            params=params,
            content=packed,
            headers=headers,
        )
        if response.status_code == 413 and len(data) > self.batch_bytes:
            # A server or proxy with a smaller limit: requests of ``batch_bytes`` from now on.
            self.grow_to = self.batch_bytes
            raise _Transient(f"{stream}: {_detail(response)}; sending smaller requests")
        if response.status_code == 200:
            body = _decoded(response, wt.Appended)
            self.committed[stream] = body.committed
            self._want(body.missing)
            if live:
                self._last_heartbeat = time.monotonic()
            return
        if response.status_code == 409:
            expected = response.json().get("expected")
            if isinstance(expected, int) and expected != offset:
                self.committed[stream] = expected  # go on from where the server is
                return
        if stream == "console" and response.status_code == 422:
            raise PermanentError("the server predates console logs: upgrade it to see them")
        if response.status_code == 410:
            raise self._deleted(response)
        raise PermanentError(f"HTTP {response.status_code}: {_detail(response)}")

    def _heartbeat(self) -> None:
        if time.monotonic() - self._last_heartbeat < self.heartbeat_interval:
            return
        response = self._request("POST", f"/runs/{self.run_id}/heartbeat")
        if response.status_code == 200:
            self._last_heartbeat = time.monotonic()

    def _upload_files(self, started: float) -> None:
        for path, sha in list(self.wanted.items()):
            if time.monotonic() - started > self.budget:
                return
            try:
                if not self._upload(path, sha, started):
                    return  # in parts, and out of time: the next pump goes on with it
            except PermanentError as exc:
                self.files_failed[path] = str(exc)
            self.uploading.pop(path, None)
            self.wanted.pop(path, None)

    def _upload(self, name: str, sha: str | None, started: float) -> bool:
        """Send one file; False when it goes in parts and the time ran out first."""
        root = self.run_dir.resolve()
        target = (root / name).resolve()
        if root not in target.parents:
            raise PermanentError(f"{name!r} is outside the run directory")
        try:
            if sha is not None and name == f"{ARTIFACT_BLOBS}/{sha}":
                # Named by its content when written (and never changed): the server checks
                # the hash as it receives the bytes, so reading them twice here buys nothing.
                actual = sha
            else:
                actual = self._sha256(target)
        except OSError as exc:
            raise PermanentError(f"cannot read {name}: {exc}") from None
        if sha is not None and actual != sha:
            # Changed since it was recorded (a "live" file): a later record names the new content.
            raise PermanentError(f"{name} changed since it was recorded")
        size = target.stat().st_size
        if size > self.part_threshold:
            done = self._upload_in_parts(name, target, actual, size, started)
            if done is None:  # a server without uploads in parts: one PUT after all
                self.part_threshold = 2**62
            elif not done:
                return False
            else:
                return self._link(name, sha, actual)
        response = self._request(
            "PUT",
            f"/blobs/{actual}",
            # For this run: the upload proves that the run's owner holds the content.
            params={"run": self.run_id},
            content=_file_range(target, 0, size),
            # A declared length, not chunked encoding: the server parses the body faster.
            headers={"content-type": "application/octet-stream", "content-length": str(size)},
        )
        if response.status_code != 200:
            raise PermanentError(
                f"upload of {name}: HTTP {response.status_code} {_detail(response)}"
            )
        return self._link(name, sha, actual)

    def _link(self, name: str, sha: str | None, actual: str) -> bool:
        """A file recorded without its hash (a git diff) is named once uploaded."""
        if sha is None:
            response = self._request(
                "POST", f"/runs/{self.run_id}/files", json={"path": name, "sha256": actual}
            )
            if response.status_code != 200:
                raise PermanentError(f"{name}: HTTP {response.status_code} {_detail(response)}")
        return True

    def _upload_in_parts(
        self, name: str, path: Path, sha: str, size: int, started: float
    ) -> bool | None:
        """True once the server has the whole; False when the time ran out (the server
        keeps the parts it has: the next call sends the others); None: no such route."""
        response = self._request(
            "POST", f"/blobs/{sha}/uploads", params={"run": self.run_id}, json={"size": size}
        )
        if response.status_code in (404, 405) and _detail(response) in (
            "Not Found",
            "Method Not Allowed",
        ):
            return None
        if response.status_code != 200:
            raise PermanentError(
                f"upload of {name}: HTTP {response.status_code} {_detail(response)}"
            )
        upload = _decoded(response, wt.Upload)
        part_size = upload.part_size
        received = set(upload.received)
        missing = [n for n in range(upload.parts) if n not in received]
        have = sum(min(part_size, size - n * part_size) for n in received)
        self.uploading[name] = [have, size]
        url = f"/uploads/{upload.id}"
        with ThreadPoolExecutor(PART_WORKERS, thread_name_prefix="trackline-part") as pool:
            running: set[Future[int]] = set()
            failure: BaseException | None = None
            while missing or running:
                out_of_time = time.monotonic() - started > self.budget
                while missing and len(running) < PART_WORKERS and not out_of_time and not failure:
                    number = missing.pop(0)
                    offset = number * part_size
                    length = min(part_size, size - offset)
                    running.add(pool.submit(self._send_part, url, number, path, offset, length))
                if not running:
                    break
                finished, running = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    try:
                        self.uploading[name][0] += future.result()
                    except BaseException as exc:
                        failure = failure or exc
            if failure is not None:
                raise failure
        if missing:
            self._write_progress()
            return False
        response = self._request("POST", url + "/complete")
        if response.status_code == 200:
            return True
        if response.status_code in (404, 409):  # expired meanwhile, or a part lost: again
            return False
        raise PermanentError(f"upload of {name}: HTTP {response.status_code} {_detail(response)}")

    def _send_part(self, url: str, number: int, path: Path, offset: int, length: int) -> int:
        digest = hashlib.sha256()
        for chunk in _file_range(path, offset, length):
            digest.update(chunk)
        response = self._request(
            "PUT",
            f"{url}/parts/{number}",
            content=_file_range(path, offset, length),
            headers={
                "content-type": "application/octet-stream",
                "content-length": str(length),
                "x-part-sha256": digest.hexdigest(),
            },
        )
        if response.status_code == 404:  # the upload expired meanwhile: start it again
            raise _Transient(f"part {number}: {_detail(response)}")
        if response.status_code != 200:
            raise PermanentError(f"part {number}: HTTP {response.status_code} {_detail(response)}")
        return length

    def _sha256(self, path: Path) -> str:
        stat = path.stat()
        signature = (stat.st_mtime_ns, stat.st_size)
        cached = self._hashes.get(str(path))
        if cached is not None and cached[0] == signature:
            return cached[1]
        digest = sha256_file(path)
        self._hashes[str(path)] = (signature, digest)
        return digest

    def _write_progress(self) -> None:
        shipped, total = self.progress()
        state: dict[str, Any] = {
            "server": self.server,
            "run_id": self.run_id,
            "committed": self.committed,
            "sizes": self.sizes,
            "files_pending": len(self.wanted),
            "uploading": self.uploading,
            "files_failed": self.files_failed,
            "failed": self.failed,
            "error": self.error,
            "done": self.done,
            "shipped": shipped,
            "total": total,
        }
        text = json.dumps(state, sort_keys=True)
        if text == self._progress_written:
            return
        state["updated"] = time.time()
        target = self.run_dir / PROGRESS_FILE
        temp = target.with_name(PROGRESS_FILE + ".tmp")
        temp.write_text(json.dumps(state, indent=1), encoding="utf-8")
        os.replace(temp, target)
        self._progress_written = text


class _Transient(Exception):
    """A response that says: try again later (after ``retry_after`` seconds, if known)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def retry_after(response: httpx.Response) -> float | None:
    """The response's ``Retry-After`` in seconds (at most ``RETRY_AFTER_MAX``), or ``None``.

    Only the delta-seconds form: a server that sends a date gets the usual backoff.
    """
    value = response.headers.get("retry-after", "").strip()
    try:
        seconds = float(value)
    except ValueError:
        return None
    if not seconds >= 0:  # NaN too
        return None
    return min(seconds, RETRY_AFTER_MAX)


def _decoded(response: httpx.Response, kind: type[T]) -> T:
    """The answer as its wire type; a ``PermanentError`` naming the request and the field
    when it is not (a server of another version: retrying would not help)."""
    try:
        return wt.decode(response.content, kind)
    except wt.WireError as exc:
        request = response.request
        raise PermanentError(f"{request.method} {request.url.path}: {exc}") from None


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])[:500]
    return str(body)[:200]


def _file_range(path: Path, offset: int, length: int) -> Iterator[bytes]:
    """``length`` bytes of the file from ``offset``, in chunks."""
    with open(path, "rb") as file:
        file.seek(offset)
        left = length
        while left > 0 and (chunk := file.read(min(_CHUNK, left))):
            left -= len(chunk)
            yield chunk


def _read_frames(path: Path, offset: int, limit: int) -> bytes:
    """Bytes from ``offset`` up to at most ``limit`` (more for one big frame): whole frames only.

    At offset 0 the file header comes first. Returns ``b""`` when no whole frame is there yet.
    Bad bytes between frames (``runlog.Resync``) travel with them; the server skips them by
    the same rule.
    """
    return _read_batch(path, offset, limit)[0]


def _log_head(path: Path) -> str | None:
    """A digest of a run log's header and first frame (its run start: run id, time, host,
    pid), which tell one log from another; ``None`` until that frame is whole."""
    try:
        with open(path, "rb") as file:
            head = file.read(HEADER_SIZE + FRAME.size)
            if len(head) < HEADER_SIZE + FRAME.size:
                return None
            length = FRAME.unpack_from(head, HEADER_SIZE)[0]
            if not 0 < length <= MAX_FRAME:
                return None
            frame = file.read(length)
    except OSError:
        return None
    if len(frame) < length:
        return None
    return hashlib.sha256(head + frame).hexdigest()[:32]


def _frames_end(data: bytes, offset: int, limit: int) -> int:
    """The end in ``data`` (read from file offset ``offset``) of its whole frames within
    the first ``limit`` bytes (at least one frame)."""
    head = HEADER_SIZE if offset == 0 else 0
    end = head + _cut_frames(memoryview(data)[head:limit]).end
    return end if end > head else head + scan_frames(memoryview(data)[head:]).end


def _cut_frames(view: memoryview) -> Scan:
    """``scan_frames`` of a window the log goes on past, whose last frame is likely cut.

    The cut frame ends the scan (``wait_for_partial``): scanned as bad bytes, it had
    every later offset of the window tried as a frame start, a tenth of a second for
    the cut half of a 700 KB row (and a record holding a log's bytes could pass for
    frames). Where the window's first frame does not fit in it, the usual rule applies:
    bad bytes are skipped, and the caller reads a larger window for a big frame.
    """
    scan = scan_frames(view, wait_for_partial=True)
    return scan if scan.payloads else scan_frames(view)


#: A range read for a request: its bytes, whether the log goes on, the bytes deflated.
_Batch = tuple[bytes, bool, bytes]


def _packed_batch(path: Path, offset: int, limit: int) -> _Batch:
    data, more = _read_batch(path, offset, limit)
    return data, more, zlib.compress(data, 1)


def _read_batch(path: Path, offset: int, limit: int) -> tuple[bytes, bool]:
    """``_read_frames``, and whether the limit cut it: more data follows the batch."""
    want = max(limit, HEADER_SIZE + FRAME.size)
    rereads = 0
    with open(path, "rb") as file:
        while True:
            file.seek(offset)
            data = file.read(want)
            head = 0
            if offset == 0:
                if len(data) < HEADER_SIZE:
                    return b"", False
                check_header(data)
                head = HEADER_SIZE
            # Frame boundaries only: the records are not decoded (the server does that).
            view = memoryview(data)[head:]
            scan = _cut_frames(view) if len(data) == want else scan_frames(view)
            end = head + scan.end
            if rereads < MAX_REREADS and torn(file, offset, data, end, scan):
                rereads += 1  # shipped, the server would skip a frame the writer was writing
                continue
            if end > head or len(data) < want:
                break
            # Not one whole frame in the batch: a frame bigger than it, or bad bytes before one.
            want *= 2
    more = len(data) == want and data_end(memoryview(data)) > end
    if end == 0:
        return b"", more
    return data[:end], more


def read_progress(run_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """What the last shipper of ``run_dir`` wrote to ``upload.json``, or ``None``."""
    try:
        data = json.loads((Path(run_dir) / PROGRESS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
