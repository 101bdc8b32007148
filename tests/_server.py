"""Helpers for server tests: a real uvicorn server in a subprocess, PostgreSQL, polling.

A test module imports the fixtures it uses, ``from _server import fixture_server``:
pytest finds a fixture among a module's names and registers it under its ``name``
(``server``), so the test's argument does not shadow the import.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

ADMIN_KEY = "tl_test_admin_key_0123456789"
PGBIN = Path("/usr/lib/postgresql/15/bin")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(
    condition: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05, what: str = ""
) -> Any:
    """Poll until ``condition()`` is truthy; its value. Fails the test at the deadline."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except Exception as exc:
            last_error = exc
        if time.monotonic() > deadline:
            pytest.fail(
                f"timed out after {timeout}s waiting for {what or condition}: {last_error!r}"
            )
        time.sleep(interval)


class ServerProcess:
    """``python -m trackline.server`` on a free loopback port; restartable on the same port."""

    def __init__(
        self,
        data_dir: Path,
        database_url: str | None = None,
        files: str | None = None,
        port: int | None = None,
        extra_args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.database_url = database_url
        self.files = files
        self.port = port or free_port()
        self.extra_args = extra_args
        self.env = env or {}
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / f"server-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: bool = True) -> ServerProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            sys.executable,
            "-m",
            "trackline.server",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            *self.extra_args,
        ]
        if self.database_url:
            argv += ["--database-url", self.database_url]
        if self.files:
            argv += ["--files", self.files]
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKLINE_SERVER")}
        env.update({"TRACKLINE_ADMIN_KEY": ADMIN_KEY, **self.env})
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        try:
            self.process = subprocess.Popen(argv, stdout=log, stderr=log, env=env)
        finally:
            log.close()
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                pytest.fail(f"server exited with {self.process.returncode}:\n{self.log()}")
            return httpx.get(self.url + "/api/v1/health", timeout=2).status_code == 200

        wait_for(ready, timeout, 0.1, what=f"server on {self.url}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-5000:]
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL: no shutdown of any kind."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(8)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(15)
        self.process = None

    def client(self, key: str | None = ADMIN_KEY) -> httpx.Client:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url + "/api/v1", headers=headers, timeout=60)


@pytest.fixture(name="server")
def fixture_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A fresh server on SQLite (function scope: a test may kill or restart it)."""
    proc = ServerProcess(tmp_path / "server").start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module", name="shared_server")
def fixture_shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for a module's read-mostly tests."""
    proc = ServerProcess(tmp_path_factory.mktemp("shared-server")).start()
    yield proc
    proc.stop()


# -- PostgreSQL --------------------------------------------------------------------------


class MotoS3:
    """moto's standalone S3 server on a free port with bucket ``tl-bucket``; ``env`` holds
    the fake credentials a server process needs."""

    env: ClassVar[dict[str, str]] = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }

    def __init__(self, work: Path, bucket: str = "tl-bucket") -> None:
        self.work, self.bucket = work, bucket
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> MotoS3:
        pytest.importorskip("moto", reason="S3 needs moto[server]")
        import boto3

        self.work.mkdir(parents=True, exist_ok=True)
        log = open(self.work / "moto.log", "wb")
        argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        self.process = subprocess.Popen(argv, stdout=log, stderr=log)
        log.close()
        wait_for(lambda: httpx.get(self.url, timeout=2).status_code < 500, 60, 0.1, "moto")
        client = boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )
        client.create_bucket(Bucket=self.bucket)
        return self

    def __exit__(self, *_: object) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(15)


class Postgres:
    """A throwaway PostgreSQL cluster (initdb + pg_ctl as the ``postgres`` user).

    It syncs nothing to disk (``fsync=off``, ``synchronous_commit=off``): it is thrown
    away. ``TRACKLINE_TEST_PG_DURABLE=1`` keeps PostgreSQL's defaults, each commit
    flushed (the benches' figures "with PostgreSQL's durable defaults")."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="trackline-pg-"))
        self.port = free_port()
        self._names = itertools.count()

    def _run(self, command: str) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
            argv = ["su", "postgres", "-s", "/bin/sh", "-c", command]
        else:
            argv = ["/bin/sh", "-c", command]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{command} failed: {result.stdout}\n{result.stderr}")

    def start(self) -> Postgres:
        data = self.root / "data"
        self._run(
            f"{PGBIN}/initdb -D {data} -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync"
        )
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=300"
        )
        if os.environ.get("TRACKLINE_TEST_PG_DURABLE") != "1":
            options += " -c fsync=off -c synchronous_commit=off"
        self._run(
            f'{PGBIN}/pg_ctl -D {data} -l {self.root}/server.log -w -t 60 -o "{options}" start'
        )
        return self

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._run(f"{PGBIN}/pg_ctl -D {self.root / 'data'} -m immediate -w stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database; its SQLAlchemy URL."""
        import psycopg

        name = f"t{os.getpid()}_{next(self._names)}"
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def postgres_available() -> bool:
    return (PGBIN / "initdb").exists() and (PGBIN / "pg_ctl").exists()


@pytest.fixture(scope="session", name="postgres")
def fixture_postgres() -> Iterator[Postgres]:
    if not postgres_available():
        pytest.skip(
            f"PostgreSQL server binaries not found in {PGBIN} "
            "(apt-get install -y postgresql); CI installs them"
        )
    cluster = Postgres().start()
    yield cluster
    cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"], name="database_url")
def fixture_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db' / 'trackline.db'}"
    cluster: Postgres = request.getfixturevalue("postgres")
    return cluster.new_database()


# -- the app in-process (fast storage and API tests) ----------------------------------


@pytest.fixture(name="app_client")
def fixture_app_client(database_url: str, tmp_path: Path) -> Iterator[Any]:
    """A ``TestClient`` of the app on ``database_url``, authenticated as the admin."""
    from fastapi.testclient import TestClient
    from trackline.server.app import create_app
    from trackline.server.config import ServerConfig

    config = ServerConfig.build(tmp_path / "srv", database_url, admin_key=ADMIN_KEY)
    app = create_app(config, announce=False)
    with TestClient(app, headers={"authorization": f"Bearer {ADMIN_KEY}"}) as client:
        yield client
    app.state.ctx.db.dispose()


def log_bytes(records: list[Any]) -> bytes:
    """A whole run log (header and frames) holding ``records``."""
    from trackline import runlog

    return bytes(runlog.header_bytes() + b"".join(runlog.frame_record(r) for r in records))


def canon(value: Any) -> Any:
    """A value with its types made explicit, NaN equal to NaN, for exact comparison."""
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, float):
        return ("f", repr(value))
    if isinstance(value, int):
        return ("i", value)
    if isinstance(value, dict):
        return {k: canon(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canon(v) for v in value]
    return value


def frame_ends(data: bytes) -> list[int]:
    """Where each frame of a whole run log (``log_bytes``) ends."""
    from trackline import runlog

    view = memoryview(data)[runlog.HEADER_SIZE :]
    return [f.end for f in runlog.iter_frames(view, runlog.HEADER_SIZE)]


def frames_bytes(records: list[Any]) -> bytes:
    from trackline import runlog

    return b"".join(runlog.frame_record(r) for r in records)


def ship(
    run_dir: Path, url: str, key: str = ADMIN_KEY, timeout: float = 30.0, **options: Any
) -> None:
    """Upload a finished run directory to the server, all of it, as its agent would
    (``options`` for the ``Shipper``, e.g. ``rank``)."""
    from trackline._transport import Shipper

    with Shipper(run_dir, url, key, live=False, **options) as shipper:
        deadline = time.monotonic() + timeout
        while not shipper.pump(final=True):
            assert time.monotonic() < deadline, shipper.error


def post_log(
    client: Any, run_id: str, data: bytes, offset: int = 0, stream: str = "main", **kwargs: Any
) -> Any:
    import zlib

    headers = {"content-encoding": "deflate", **kwargs.pop("headers", {})}
    return client.post(
        f"/api/v1/runs/{run_id}/streams/{stream}",
        params={"offset": offset},
        content=zlib.compress(data),
        headers=headers,
        **kwargs,
    )


# -- a TCP proxy that can refuse connections -------------------------------------------


class FlakyProxy:
    """Forwards 127.0.0.1:port to a target port; ``refuse()`` closes it (connection refused)."""

    def __init__(self, target_port: int, port: int | None = None) -> None:
        import threading

        self.target_port = target_port
        self.port = port or free_port()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._connections: list[socket.socket] = []
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def accept(self) -> FlakyProxy:
        import threading

        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self._listener = listener
        thread = threading.Thread(target=self._serve, args=(listener,), daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def refuse(self) -> None:
        """Stop listening and cut every open connection."""
        with self._lock:
            listener, self._listener = self._listener, None
            connections, self._connections = self._connections, []
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def _serve(self, listener: socket.socket) -> None:
        import threading

        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self._connections += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)
