"""deploy/ as an operator runs it: Debian's nginx with deploy/trackline.nginx.conf (only its
addresses changed) in front of two `trackline server`s on one PostgreSQL database and one S3
bucket (moto). Online runs log metrics, save a file and log an artifact above 64 MiB (so they
go up in parts through the proxy) while each server in turn is killed and restarted. Then,
through the balancer: 0 points lost or duplicated, every file's sha256, contiguous artifact
versions, and a write read back at once. ``nox -s deploy`` runs it bigger."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trackline
from _server import (  # noqa: F401 - fixtures
    ADMIN_KEY,
    MotoS3,
    ServerProcess,
    fixture_postgres,
    free_port,
    wait_for,
)

ROOT = Path(__file__).resolve().parent.parent
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
#: Steps per run and runs; ``nox -s deploy`` raises them (TRACKLINE_DEPLOY_SCALE).
SCALE = int(os.environ.get("TRACKLINE_DEPLOY_SCALE", "1"))
STEPS, RUNS = 3000 * SCALE, 2
BIG = 66 * 1024 * 1024  # above the 64 MiB body limit: uploaded in parts

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(NGINX).exists(), reason="nginx is not installed (apt-get install nginx; CI does)"
    ),
]

TRAIN = textwrap.dedent(
    """
    import os, sys, time
    import trackline

    index, steps, size = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    run = trackline.init(project="deploy", name=f"run-{index}", config={"index": index})
    for step in range(steps):
        run.log({"loss": 1.0 / (step + 1), "index": index})
        if step % 100 == 0:
            time.sleep(0.02)
    weights = f"weights-{index}.bin"
    with open(weights, "wb") as file:
        file.write(os.urandom(size))
    run.save(weights)
    for version in range(2):  # v0 above the body limit, v1 small
        checkpoint = f"ckpt-{index}-{version}.bin"
        with open(checkpoint, "wb") as file:
            file.write(os.urandom(size if version == 0 else 1024))
        artifact = trackline.Artifact(f"ckpt-{index}", type="model")
        artifact.add_file(checkpoint, name="model.bin")
        run.log_artifact(artifact)
    run.finish()
    print("RUN", run.id)
    """
)


def nginx_config(work: Path, port: int, upstreams: list[int]) -> Path:
    """deploy/trackline.nginx.conf with this test's addresses, in a main config of its own."""
    site = (ROOT / "deploy" / "trackline.nginx.conf").read_text()
    site = site.replace("    listen 80;", f"    listen 127.0.0.1:{port};")
    servers = "".join(
        f"    server 127.0.0.1:{p} max_fails=2 fail_timeout=10s;\n" for p in upstreams
    )
    site, count = re.subn(r"(    server 127\.0\.0\.1:\d+ [^\n]*;\n)+", servers, site)
    assert count == 1, "the upstream block of deploy/trackline.nginx.conf changed shape"
    (work / "trackline.conf").write_text(site)
    user = "user root;\n" if os.geteuid() == 0 else ""
    temps = "\n".join(
        f"    {kind}_temp_path {work / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    main = (
        f"{user}worker_processes 1;\npid {work / 'nginx.pid'};\n"
        f"error_log {work / 'error.log'} warn;\nevents {{ worker_connections 512; }}\n"
        f"http {{\n    access_log {work / 'access.log'};\n{temps}\n"
        f"    include {work / 'trackline.conf'};\n}}\n"
    )
    path = work / "nginx.conf"
    path.write_text(main)
    return path


@pytest.fixture
def balancer(postgres: Any, tmp_path: Path) -> Iterator[tuple[str, list[ServerProcess]]]:
    """nginx's URL and the two servers behind it (one database, one bucket)."""
    database = postgres.new_database()
    with MotoS3(tmp_path / "moto") as s3:
        servers = [
            ServerProcess(
                tmp_path / f"server{i}",
                database_url=database,
                files="s3://tl-bucket/deploy",
                extra_args=("--s3-endpoint-url", s3.url),
                env=s3.env,
            ).start()
            for i in range(2)
        ]
        work = tmp_path / "nginx"
        work.mkdir()
        port = free_port()
        config = nginx_config(work, port, [s.port for s in servers])
        check = subprocess.run(
            [NGINX, "-t", "-p", str(work), "-c", str(config)], capture_output=True
        )
        assert check.returncode == 0, check.stderr.decode()
        nginx = subprocess.Popen(
            [NGINX, "-p", str(work), "-c", str(config), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for(
                lambda: httpx.get(url + "/api/v1/health", timeout=2).status_code == 200,
                30,
                0.1,
                what="nginx",
            )
            yield url, servers
            errors = (work / "error.log").read_text(errors="replace")
            failovers = len(re.findall(r"upstream|connect\(\) failed", errors))
            print(
                f"\nnginx: {failovers} upstream errors logged (requests sent to the other server)"
            )
        finally:
            nginx.terminate()
            nginx.wait(15)
            for server in servers:
                server.stop()


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def test_two_servers_behind_nginx_lose_nothing_while_each_is_killed(
    balancer: tuple[str, list[ServerProcess]], tmp_path: Path
) -> None:
    url, servers = balancer
    started = time.monotonic()
    script = tmp_path / "train.py"
    script.write_text(TRAIN)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKLINE_")}
    env.update(TRACKLINE_SERVER=url, TRACKLINE_API_KEY=ADMIN_KEY, TRACKLINE_DIR=str(tmp_path))
    env["TRACKLINE_UPLOAD_GIVE_UP"] = "60"  # agents stop soon once the test is over
    trainers = [
        subprocess.Popen(
            [sys.executable, str(script), str(i), str(STEPS), str(BIG)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(RUNS)
    ]
    kills = 0
    for server in [*servers, *servers]:  # each in turn, twice, while the runs log and upload
        time.sleep(1.5)
        server.kill()
        kills += 1
        time.sleep(1.0)
        server.start()
    outputs = [t.communicate(timeout=300) for t in trainers]
    for trainer, (_, err) in zip(trainers, outputs, strict=True):
        assert trainer.returncode == 0, err[-3000:]
    run_ids = [out.split("RUN ")[-1].split()[0] for out, _ in outputs]

    with trackline.Api(url, ADMIN_KEY) as api:

        def arrived() -> bool:  # the agents go on shipping after the scripts exit
            for run_id in run_ids:
                run = api.run(run_id)
                files = {f["path"]: f for f in run.files()}
                if run.state != "finished" or run.last_step != STEPS - 1:
                    return False
                if not all(f["uploaded"] for f in files.values()):
                    return False
                versions = api.artifact_versions(f"deploy/ckpt-{run.config['index']}")
                if len(versions) < 2 or not all(v.complete for v in versions):
                    return False
            return True

        wait_for(arrived, 240, 0.5, what="every run, file and artifact on the servers")
        table = []
        for run_id in run_ids:
            run = api.run(run_id)
            index = run.config["index"]
            steps = [int(r["_step"]) for r in run.history(keys=["loss"])]
            lost = STEPS - len(set(steps))
            duplicated = len(steps) - len(set(steps))
            assert (lost, duplicated) == (0, 0) and steps == list(range(STEPS))
            local = tmp_path / f"weights-{index}.bin"
            files = {f["path"]: f for f in run.files()}
            (entry,) = [f for p, f in files.items() if p.endswith(f"weights-{index}.bin")]
            assert entry["sha256"] == sha256(local) and entry["size"] == BIG
            fetched = run.download(entry["path"], tmp_path / f"fetched-{index}.bin")
            assert sha256(fetched) == entry["sha256"]  # streamed back through nginx
            versions = api.artifact_versions(f"deploy/ckpt-{index}")
            assert [v.version for v in versions] == [0, 1]
            big = tmp_path / f"ckpt-{index}-0.bin"
            model = versions[0].manifest["model.bin"]
            assert model["sha256"] == sha256(big) and model["size"] == BIG
            table.append((run_id, len(steps), lost, duplicated, "ok", "v0,v1"))
        # Read your writes through the balancer: each answer from either server.
        for attempt in range(6):
            tags = [f"check-{attempt}"]
            api.run(run_ids[0]).update(tags=tags)
            assert api.run(run_ids[0]).tags == tags
    elapsed = time.monotonic() - started
    print(f"\nnginx + 2 servers (PostgreSQL, S3), {kills} server kills, {elapsed:.0f} s")
    print(f"{'run':<12} {'points':>7} {'lost':>5} {'dup':>4}  file sha256  artifact")
    for run_id, points, lost, duplicated, file_ok, versions_seen in table:
        print(f"{run_id:<12} {points:>7} {lost:>5} {duplicated:>4}  {file_ok:<11}  {versions_seen}")
