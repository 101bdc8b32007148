"""The GPU paths on a real CUDA device: values logged from a side stream, and a
distributed run whose ranks train on the GPU, with the node's GPU stats and each
rank's own GPU memory reaching the server. Skipped where there is no CUDA device
(CI has none; these run on a lent GPU machine)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import trackline
from _procs import Leftovers, wait_gone
from _server import ADMIN_KEY, ServerProcess, fixture_server, free_port

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

__all__ = ["fixture_server"]

MiB = 2**20


def test_values_logged_on_a_side_stream_are_read_once_computed() -> None:
    """A CUDA value is read on the writer thread; queued on a side stream, it must be
    read after that stream's work, not from the writer's default stream at once."""
    run = trackline.init(project="gpu")
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        for step in range(3):
            a = torch.ones((8192, 8192), device="cuda")
            for _ in range(12):  # ~0.3 s of queued work per step: ones stay ones
                a = (a @ a) / 8192
            mean = a.mean() + step
            run.log({"mean": mean, "half": mean.to(torch.bfloat16)}, step=step)
            mean.add_(1000.0)  # a later in-place change is not what was logged
    torch.cuda.synchronize()
    # A burst of rows of CUDA values on the default stream: read a batch at a time.
    for step in range(3, 3003):
        loss = torch.tensor(step / 4, device="cuda")
        count = torch.tensor(step, device="cuda", dtype=torch.int64)
        run.log({"mean": loss, "half": loss.to(torch.bfloat16), "count": count}, step=step)
    run.finish()
    rows = trackline.open_run(run.dir).history()
    assert [(row["mean"], row["half"]) for row in rows[:3]] == [
        (1.0 + s, 1.0 + s) for s in range(3)
    ]
    burst = rows[3:]
    assert [(row["mean"], row["count"]) for row in burst] == [(s / 4, s) for s in range(3, 3003)]
    assert all(row["half"] == float(torch.tensor(row["mean"]).to(torch.bfloat16)) for row in burst)
    assert all(type(row["count"]) is int for row in burst)


RANK_SCRIPT = """
import os, sys, time
import torch
import torch.distributed as dist
import trackline

rank = int(os.environ["RANK"])
dist.init_process_group("gloo", rank=rank, world_size=int(os.environ["WORLD_SIZE"]))
device = torch.device("cuda", rank % torch.cuda.device_count())
torch.cuda.set_device(device)
run = trackline.init(project="gpu", id="gpu-ranks", rank=rank, rank_metrics=True)
print(run._agent.pid, flush=True)
held = torch.empty((rank + 1) * 256 * 2**20, dtype=torch.uint8, device=device)
model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1))
model = model.to(device)
if rank == 0:
    trackline.watch(model, log="all", log_freq=5)
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
for step in range(20):
    loss = model(torch.randn(64, 32, device=device)).pow(2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    run.log({"loss": loss}, step=step)
time.sleep(3)  # sampled every 0.2 s meanwhile, the memory held
dist.barrier()
run.finish()
sys.path.insert(0, os.environ["TESTS"])
import _procs
_procs.wait_gone(run._agent.pid, 120)
dist.destroy_process_group()
"""


def test_ranks_training_on_the_gpu_report_it(
    server: ServerProcess, tmp_path: Path, leftovers: Leftovers
) -> None:
    script = tmp_path / "rank.py"
    script.write_text(textwrap.dedent(RANK_SCRIPT))
    port, world = free_port(), 2
    children = []
    for rank in range(world):
        env = {
            **os.environ,
            "RANK": str(rank),
            "WORLD_SIZE": str(world),
            "LOCAL_RANK": str(rank),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "TRACKLINE_SERVER": server.url,
            "TRACKLINE_API_KEY": ADMIN_KEY,
            "TRACKLINE_DIR": str(tmp_path / "tl"),
            "TRACKLINE_SYSTEM_INTERVAL": "0.2",
            "TESTS": str(Path(__file__).parent),
        }
        child = subprocess.Popen(
            [sys.executable, str(script)], cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True
        )
        leftovers.append(child)
        children.append(child)
    for child in children:
        assert child.stdout is not None
        leftovers.append(int(child.stdout.readline()))
    for child in children:
        assert child.wait(timeout=180) == 0
        assert child.stdout is not None
        child.stdout.close()
    for pid in leftovers:
        if isinstance(pid, int):
            wait_gone(pid, 120)

    with trackline.Api(server.url, api_key=ADMIN_KEY) as api:
        run = api.run("gpu-ranks")
        for name in ("loss", "rank1/loss"):
            rows = run.history(keys=[name])
            assert [row["_step"] for row in rows] == list(range(20)), name
            assert all(isinstance(row[name], float) and row[name] >= 0 for row in rows), name
        samples = run.system()
        keys = set().union(*samples)
        # The node's GPUs, sampled whole by its local rank 0.
        assert {"gpu/0/util_percent", "gpu/0/memory_total_bytes", "gpu/0/temperature_c"} <= keys
        assert not any(k.startswith("rank1/gpu/") and "proc_memory" not in k for k in keys)
        # What each rank's own processes hold on the device it trains on.
        own = {
            0: "gpu/0/proc_memory_bytes",
            1: f"rank1/gpu/{1 % torch.cuda.device_count()}/proc_memory_bytes",
        }
        for rank, name in own.items():
            held = max(sample.get(name, 0) for sample in samples)
            assert held >= (rank + 1) * 256 * MiB, (name, held)
        environment = run.environment
        assert environment is not None and environment.gpus
        assert all("NVIDIA" in name or "H" in name for name in environment.gpus)
        assert {h["key"] for h in run.histograms()} >= {"gradients/0.weight", "parameters/0.weight"}
