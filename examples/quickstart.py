"""The main job: a local trackline server on SQLite, a training run logging to it, the dashboard URL.

    python examples/quickstart.py [--port 8080] [--data-dir ~/.trackline/server] [--no-serve]

Starts ``trackline server`` (unless one already answers on the port), trains a
small PyTorch MLP on generated data with gradients watched, waits until the
server has every point, prints the dashboard URL and keeps the server running
until Ctrl-C (``--no-serve`` stops it and exits instead).
"""

from __future__ import annotations

import argparse
import math
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import trackline


def healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/v1/health", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def admin_key(data_dir: Path) -> str:
    """The key this example uses, kept beside the server's database (mode 0600)."""
    path = data_dir / "quickstart.key"
    if path.exists():
        return path.read_text().strip()
    key = "tl_" + secrets.token_urlsafe(24)
    data_dir.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(key)
    return key


def start_server(url: str, port: int, data_dir: Path, key: str) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "trackline",
        "server",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
    ]
    server = subprocess.Popen(command, env={**os.environ, "TRACKLINE_ADMIN_KEY": key})
    deadline = time.monotonic() + 60
    while not healthy(url):
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            raise SystemExit(
                f"trackline server did not start on port {port} (exit code {server.poll()}); "
                "if the port is taken, pick another: python examples/quickstart.py --port 8081"
            )
        time.sleep(0.2)
    return server


def train(project: str, steps: int) -> trackline.Run:
    """A 784-64-10 MLP on a generated, learnable classification task."""
    import torch

    torch.manual_seed(0)
    config = {"lr": 0.05, "hidden": 64, "batch_size": 64, "steps": steps, "optimizer": "sgd"}
    run = trackline.init(
        project=project, config=config, tags=["quickstart"], notes="The README's main job."
    )
    inputs = torch.randn(16384, 784)
    labels = (
        inputs[:, :10].argmax(dim=1)
    ).long()  # the class is the largest of the first 10 features
    model = torch.nn.Sequential(torch.nn.Linear(784, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=config["lr"], momentum=0.9)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    run.watch(model, log="all", log_freq=50)
    run.define_metric("val/loss", summary="min")
    run.define_metric("val/*", step_metric="epoch")
    for step in range(steps):
        batch = torch.randint(0, 14336, (config["batch_size"],))
        logits = model(inputs[batch])
        loss = torch.nn.functional.cross_entropy(logits, labels[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        accuracy = (logits.argmax(1) == labels[batch]).float().mean()
        run.log({"train/loss": loss, "train/accuracy": accuracy, "lr": scheduler.get_last_lr()[0]})
        if (step + 1) % 50 == 0 or step + 1 == steps:
            with torch.no_grad():
                val_logits = model(inputs[14336:])
                val_loss = torch.nn.functional.cross_entropy(val_logits, labels[14336:])
                val_acc = (val_logits.argmax(1) == labels[14336:]).float().mean()
            run.log(
                {"val/loss": val_loss, "val/accuracy": val_acc, "epoch": -(-(step + 1) // 50)},
                step=step,
            )
    run.summary["final_val_accuracy"] = float(val_acc)
    run.finish()
    return run


def wait_until_uploaded(run: trackline.Run, steps: int, timeout: float = 120) -> Any:
    api = trackline.Api()
    deadline = time.monotonic() + timeout
    while True:
        try:
            remote = api.run(run.id)
            if remote.state == "finished" and len(remote.history(keys=["train/loss"])) == steps:
                return remote
        except trackline.ApiError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit("the run did not reach the server in time; see trackline status")
        time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--data-dir", type=Path, default=Path.home() / ".trackline" / "server")
    parser.add_argument("--project", default="quickstart")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument(
        "--no-serve", action="store_true", help="stop the server and exit when done"
    )
    args = parser.parse_args()

    url = f"http://127.0.0.1:{args.port}"
    key = os.environ.get("TRACKLINE_API_KEY") or admin_key(args.data_dir)
    server = None
    if not healthy(url):
        print(f"starting trackline server on {url} (data in {args.data_dir})")
        server = start_server(url, args.port, args.data_dir, key)
    os.environ["TRACKLINE_SERVER"] = url
    os.environ["TRACKLINE_API_KEY"] = key
    os.environ.setdefault("TRACKLINE_SYSTEM_INTERVAL", "2")

    try:
        started = time.monotonic()
        run = train(args.project, args.steps)
        print(
            f"trained {args.steps} steps in {time.monotonic() - started:.1f}s; run {run.id} in {run.dir}"
        )
        remote = wait_until_uploaded(run, args.steps)
        loss = remote.summary.get("train/loss")
        print(
            f"uploaded: {remote.name} ({remote.state}), train/loss {loss if isinstance(loss, str) else f'{loss:.4f}'}"
            f", val/loss min {remote.summary.get('val/loss', math.nan):.4f}"
        )
        print(f"\nDashboard: {url}/#/p/{remote.project}/r/{run.id}")
        print(f"API key (paste it into the dashboard once): {key}")
    except BaseException:
        if server is not None:  # a server this script started goes with it
            server.terminate()
            server.wait(timeout=30)
        raise
    if server is None:
        return
    if args.no_serve:
        server.terminate()
        server.wait(timeout=30)
        return
    print("The server keeps running; press Ctrl-C to stop it.")
    try:
        server.wait()
    except KeyboardInterrupt:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
