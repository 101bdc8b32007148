"""Who samples which GPU of a multi-GPU node: real ranks and their real agents.

Four ranks on two "nodes" of two GPUs each, launched as torchrun and as ``srun`` launch
them, with the GPUs shared by a node's ranks or split among them (``CUDA_VISIBLE_DEVICES``
per rank). This machine has no GPU, so the agents import a stand-in ``pynvml`` (put on
their ``PYTHONPATH``) that answers as a two-GPU node would: its device ``i`` reports
``util_percent`` ``10 + i``, and the training process of local rank ``i`` holds memory on
device ``i``. Everything else is real: ``trackline.init(rank=...)``, the agent's launch
flags, its sampler, its system log.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from _procs import Leftovers, wait_gone
from test_agent import NODE_VARIABLES
from trackline import runlog
from trackline.records import SystemSample

#: A two-GPU node's NVML, as much of it as the agent's sampler reads.
FAKE_PYNVML = """
import os

NVML_TEMPERATURE_GPU = 0
NVML_CLOCK_SM = 1
COUNT = 2


class NVMLError(Exception):
    pass


class _Process:
    def __init__(self, pid, used):
        self.pid, self.usedGpuMemory = pid, used


class _Use:
    def __init__(self, gpu):
        self.gpu, self.memory = gpu, 0


class _Memory:
    used, total, free = 3 << 30, 8 << 30, 5 << 30


def nvmlInit():
    pass


def nvmlShutdown():
    pass


def nvmlSystemGetDriverVersion():
    return "999.9"


def nvmlDeviceGetCount():
    return COUNT


def nvmlDeviceGetHandleByIndex(index):
    if not 0 <= index < COUNT:
        raise NVMLError("invalid argument")
    return index


def nvmlDeviceGetHandleByUUID(uuid):
    for index in range(COUNT):
        if nvmlDeviceGetUUID(index) == uuid:
            return index
    raise NVMLError("not found")


def nvmlDeviceGetUUID(handle):
    return f"GPU-fake{handle}"


def nvmlDeviceGetName(handle):
    return "Fake GPU"


def nvmlDeviceGetUtilizationRates(handle):
    return _Use(10 + handle)


def nvmlDeviceGetMemoryInfo(handle):
    return _Memory()


def nvmlDeviceGetPowerUsage(handle):
    raise NVMLError("not supported")


def nvmlDeviceGetTemperature(handle, sensor):
    return 50


def nvmlDeviceGetClockInfo(handle, clock):
    return 1500


def nvmlDeviceGetComputeRunningProcesses(handle):
    # The agent's parent is the training process; local rank i trains on device i.
    if handle == int(os.environ.get("FAKE_LOCAL_GPU", "-1")):
        return [_Process(os.getppid(), 1 << 30)]
    return []


def nvmlDeviceGetGraphicsRunningProcesses(handle):
    return []
"""

WORKER = """
import time
import trackline
run = trackline.init(project="gpus", id="node-gpus", rank={rank}, mode="offline")
time.sleep(1.5)  # a few samples at TRACKLINE_SYSTEM_INTERVAL
run.finish()
print(run._agent.pid if run._agent else 0, flush=True)
"""

#: rank -> (host, local rank): two ranks per "node".
NODES = {0: ("node-a", 0), 1: ("node-a", 1), 2: ("node-b", 0), 3: ("node-b", 1)}


def launch(rank: int, how: str, split: bool) -> dict[str, str]:
    """What the launcher ``how`` sets for ``rank``; ``split``: a GPU per rank."""
    local = NODES[rank][1]
    if how == "torchrun":
        env = {"RANK": str(rank), "LOCAL_RANK": str(local), "LOCAL_WORLD_SIZE": "2"}
    else:  # srun without torchrun: only SLURM's variables
        env = {"SLURM_PROCID": str(rank), "SLURM_LOCALID": str(local)}
        env["SLURM_NTASKS_PER_NODE"] = "2"
    if split:
        env["CUDA_VISIBLE_DEVICES"] = str(local)
    return env


def run_ranks(tmp_path: Path, leftovers: Leftovers, how: str, split: bool) -> dict[int, Any]:
    """Run the four ranks to their end; each rank's last system sample."""
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "pynvml.py").write_text(FAKE_PYNVML)
    children = []
    for rank in range(4):
        host, local = NODES[rank]
        env = {k: v for k, v in os.environ.items() if k not in NODE_VARIABLES}
        env.pop("TRACKLINE_SERVER", None)
        env |= launch(rank, how, split)
        env |= {
            "PYTHONPATH": os.pathsep.join([str(fake), env.get("PYTHONPATH", "")]),
            "FAKE_LOCAL_GPU": str(local),
            "TRACKLINE_HOSTNAME": host,
            "TRACKLINE_DIR": str(tmp_path / host),
            "TRACKLINE_SYSTEM_INTERVAL": "0.2",
        }
        script = textwrap.dedent(WORKER).format(rank=rank)
        child = subprocess.Popen(
            [sys.executable, "-c", script], cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True
        )
        leftovers.append(child)
        children.append(child)
    last = {}
    for rank, child in enumerate(children):
        out, _ = child.communicate(timeout=120)
        assert child.returncode == 0
        wait_gone(int(out.split()[-1]), 60)
        base = tmp_path / NODES[rank][0] / "runs" / "node-gpus"
        run_dir = base if rank == 0 else base / "ranks" / str(rank)
        samples = [
            r for r in runlog.read_records(run_dir / "system.tlog") if type(r) is SystemSample
        ]
        assert samples, f"rank {rank} took no sample"
        last[rank] = samples[-1].values
    return last


def gpu_keys(values: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in values.items() if k.startswith("gpu/")}


def whole(*devices: int) -> set[str]:
    """The keys of ``devices`` sampled whole (with the memory this rank's process holds)."""
    names = ("util_percent", "memory_used_bytes", "memory_total_bytes", "temperature_c")
    names += ("sm_clock_mhz", "proc_memory_bytes")
    return {f"gpu/{i}/{name}" for i in devices for name in names}


@pytest.mark.parametrize("how", ["torchrun", "srun"])
def test_a_nodes_first_rank_samples_the_gpus_its_ranks_share(
    tmp_path: Path, leftovers: Leftovers, how: str
) -> None:
    """Every rank sees both GPUs: the node's first rank samples both whole (and the host),
    the other only the memory its process holds on the GPU it uses: each GPU once per node.
    Under ``srun`` the second node's first rank is rank 2, told by ``SLURM_LOCALID``."""
    last = run_ranks(tmp_path, leftovers, how, split=False)
    for leader in (0, 2):
        values = gpu_keys(last[leader])
        assert set(values) == whole(0, 1), leader
        assert (values["gpu/0/util_percent"], values["gpu/1/util_percent"]) == (10, 11)
        assert values["gpu/0/proc_memory_bytes"] == 1 << 30  # its own, on its device
        assert values["gpu/1/proc_memory_bytes"] == 0
        assert "host/cpu_percent" in last[leader]
    for other in (1, 3):
        assert gpu_keys(last[other]) == {"gpu/1/proc_memory_bytes": float(1 << 30)}, other
        assert "host/cpu_percent" not in last[other]
        assert "proc/cpu_percent" in last[other]


@pytest.mark.parametrize("how", ["torchrun", "srun"])
def test_gpus_split_among_a_nodes_ranks_are_each_sampled_by_their_rank(
    tmp_path: Path, leftovers: Leftovers, how: str
) -> None:
    """A GPU per rank (``CUDA_VISIBLE_DEVICES`` set per rank): the node's first rank cannot
    see the other's GPU, so each rank samples its own whole, as its ``gpu/0`` (CUDA's
    numbering in its process): rank 1's is the node's second device (``util_percent`` 11)."""
    last = run_ranks(tmp_path, leftovers, how, split=True)
    for rank in range(4):
        values = gpu_keys(last[rank])
        assert set(values) == whole(0), rank
        assert values["gpu/0/util_percent"] == 10 + NODES[rank][1], rank
        assert values["gpu/0/proc_memory_bytes"] == 1 << 30, rank
        assert ("host/cpu_percent" in last[rank]) is (NODES[rank][1] == 0)
