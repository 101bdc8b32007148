"""The agent process: system samples, environment, crash verdicts, live files; real processes."""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest
import trackline
from _procs import Leftovers, wait_gone
from trackline import _agent, _agent_launch, _ranks, _settings, _system, runlog
from trackline.records import FileSaved, Finish, Metrics

DEADLINE = 20.0


SCRIPT_START = """\
import os, sys, time
import trackline
from trackline import runlog
from trackline.records import SystemSample

def wait_for_samples(count):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        records = runlog.read_records(run.dir / "system.tlog")
        if sum(type(r) is SystemSample for r in records) >= count:
            return
        time.sleep(0.05)
    raise TimeoutError(f"fewer than {count} system samples")

run = trackline.init(project="p")
print(run.dir, run._agent.pid, flush=True)
"""


def start_script(tmp_path: Path, body: str) -> subprocess.Popen[str]:
    """Run ``body`` as a script in ``tmp_path``; it prints its run dir and agent pid first."""
    script = tmp_path / "train.py"
    script.write_text(SCRIPT_START + textwrap.dedent(body))
    return subprocess.Popen(
        [sys.executable, str(script)], cwd=tmp_path, stdout=subprocess.PIPE, text=True
    )


def first_line(process: subprocess.Popen[str], leftovers: Leftovers) -> tuple[Path, int]:
    assert process.stdout is not None
    run_dir, agent_pid = process.stdout.readline().split()
    leftovers += [process, int(agent_pid)]
    return Path(run_dir), int(agent_pid)


def run_to_end(tmp_path: Path, body: str, leftovers: Leftovers) -> tuple[trackline.LocalRun, str]:
    """Run a script, wait for it and for its agent; the run as read then, and the script's output."""
    process = start_script(tmp_path, body)
    run_dir, agent_pid = first_line(process, leftovers)
    out, _ = process.communicate(timeout=60)
    wait_gone(agent_pid)
    return trackline.open_run(run_dir), out


def nvml_present() -> bool:
    gpus = _system.Gpus()
    present = bool(gpus.handles)
    gpus.close()
    return present


def test_finished_run_has_samples_and_environment(tmp_path: Path, leftovers: Leftovers) -> None:
    run, _ = run_to_end(
        tmp_path,
        """
        for i in range(5):
            run.log({"x": i})
        wait_for_samples(3)  # sampled every 0.5 s while the run goes on
        run.finish()
        """,
        leftovers,
    )
    assert run.state == "finished"
    assert [row["x"] for row in run.history()] == [0, 1, 2, 3, 4]
    samples = run.system()
    assert len(samples) >= 4  # first at start, every 0.5 s, last at the end
    first = samples[0]
    assert run.start_time is not None and first["_time"] - run.start_time < 5.0
    assert first["proc/rss_bytes"] > 1e6 and first["proc/threads"] >= 1
    # The agent is a child of the training process but is not counted in its tree.
    assert max(s["proc/count"] for s in samples) == 1
    for key in ("proc/cpu_percent", "proc/open_files", "proc/read_bytes", "proc/write_bytes"):
        assert first[key] >= 0
    assert 0 <= first["host/cpu_percent"] <= 100 and 0 < first["host/memory_percent"] <= 100
    assert first["host/memory_used_bytes"] > 0 and first["host/disk_used_bytes"] > 0
    assert 0 < first["host/disk_percent"] <= 100
    assert first["host/net_sent_bytes"] >= 0 and first["host/net_recv_bytes"] >= 0
    if not nvml_present():
        assert not any(key.startswith("gpu/") for s in samples for key in s)
    env = run.environment
    assert env is not None
    assert env.argv == [sys.executable, str(tmp_path / "train.py")]
    assert env.python == platform.python_version() and env.executable == sys.executable
    assert os.path.realpath(env.cwd) == os.path.realpath(tmp_path)
    assert env.packages["msgspec"] and env.packages["psutil"] == psutil.__version__
    assert env.cpu_count >= 1 and env.memory_total > 0 and env.hostname and env.user
    assert run.git is None  # tmp_path is no git work tree
    assert (run.path / "agent.log").read_text() == ""  # no GPU, no git: nothing to complain about


def test_first_and_last_sample_do_not_wait_for_the_interval(
    tmp_path: Path, leftovers: Leftovers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACKLINE_SYSTEM_INTERVAL", "60")
    run, _ = run_to_end(tmp_path, "time.sleep(1.0)\nrun.finish()\n", leftovers)
    assert run.state == "finished" and run.environment is not None
    first, last = run.system()  # one right at the start, one at the end
    assert last["_time"] - first["_time"] < 60  # not after the interval


def test_process_exiting_without_finish_is_crashed(tmp_path: Path, leftovers: Leftovers) -> None:
    run, _ = run_to_end(
        tmp_path,
        """
        for i in range(3):
            run.log({"x": float(i)})
        run._writer.flush()  # the rows are on disk; the finish record will never be
        os._exit(0)  # no atexit: nobody writes a finish record
        """,
        leftovers,
    )
    assert run.state == "crashed"
    assert [row["x"] for row in run.history()] == [0.0, 1.0, 2.0]
    assert run.end_time is not None and run.system()


def test_dead_process_is_noticed_while_a_forked_child_holds_the_pipe(
    tmp_path: Path, leftovers: Leftovers
) -> None:
    process = start_script(
        tmp_path,
        """
        run.log({"x": 1.0})
        wait_for_samples(1)
        child = os.fork()
        if child == 0:  # like a DataLoader worker: inherits the agent's pipe
            time.sleep(60)
            os._exit(0)
        print(child, flush=True)
        before = sum(type(r) is SystemSample for r in runlog.read_records(run.dir / "system.tlog"))
        wait_for_samples(before + 2)  # at least one sampled with the child in the tree
        os._exit(0)
        """,
    )
    run_dir, agent_pid = first_line(process, leftovers)
    assert process.stdout is not None
    leftovers.append(int(process.stdout.readline()))
    process.wait(timeout=60)
    process.stdout.close()
    wait_gone(agent_pid)  # the pipe is still open: the agent went by the pid
    run = trackline.open_run(run_dir)
    assert run.state == "crashed"
    assert max(s["proc/count"] for s in run.system()) == 2  # parent and forked child


def test_agent_leaves_after_finish_while_the_process_goes_on(
    tmp_path: Path, leftovers: Leftovers
) -> None:
    process = start_script(
        tmp_path,
        """
        run.log({"x": 1.0})
        wait_for_samples(2)  # the agent follows main.tlog already
        run.finish()
        print("finished", flush=True)
        time.sleep(60)
        """,
    )
    run_dir, agent_pid = first_line(process, leftovers)
    assert process.stdout is not None and process.stdout.readline().strip() == "finished"
    wait_gone(agent_pid)
    assert process.poll() is None  # still running
    process.kill()
    process.wait()
    process.stdout.close()
    run = trackline.open_run(run_dir)
    assert run.state == "finished"
    assert not any(type(r) is Finish for r in runlog.read_records(run_dir / "system.tlog"))


def test_live_file_is_copied_again_when_it_changes(tmp_path: Path, leftovers: Leftovers) -> None:
    versions = [b"v1", b"version two", b"version three!", b"the fourth version"]
    run, out = run_to_end(
        tmp_path,
        f"""
        from pathlib import Path
        versions = {versions!r}
        source, copy = Path("live.txt"), run.dir / "files" / "live.txt"

        def copied(content):
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if copy.exists() and copy.read_bytes() == content:
                    return True
                time.sleep(0.05)
            return False

        wait_for_samples(2)  # the agent follows main.tlog already when the file is saved
        source.write_bytes(versions[0])
        run.save("live.txt", policy="live")
        for content in versions[1:3]:
            time.sleep(0.05)
            source.write_bytes(content)
            print(copied(content), flush=True)  # the agent copies it, not this process
        source.write_bytes(versions[3])
        run.finish()  # copies the last version itself
        """,
        leftovers,
    )
    assert out.split() == ["True", "True"]
    assert run.state == "finished"
    assert (run.path / "files" / "live.txt").read_bytes() == versions[3]
    assert run.files["live.txt"].sha256 == hashlib.sha256(versions[3]).hexdigest()
    by_agent = [r for r in runlog.read_records(run.path / "system.tlog") if type(r) is FileSaved]
    digests = [r.sha256 for r in by_agent]
    for content in versions[1:3]:
        assert hashlib.sha256(content).hexdigest() in digests
    assert all(r.path == "live.txt" and r.policy == "live" for r in by_agent)
    assert not (run.path / ".agent-copy.tmp").exists()


def test_killing_the_agent_does_not_disturb_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    run = trackline.init(project="p")
    assert run._agent is not None
    system_log = run.dir / "system.tlog"
    deadline = time.monotonic() + DEADLINE
    while len(runlog.read_records(system_log)) < 2:  # environment, first sample
        assert time.monotonic() < deadline, "the agent wrote nothing"
        time.sleep(0.05)
    run.log({"x": -1.0})
    os.kill(run._agent.pid, signal.SIGKILL)
    wait_gone(run._agent.pid)
    for i in range(1000):
        run.log({"x": float(i)})
    run.finish()
    local = trackline.open_run(run.dir)
    assert local.state == "finished"
    assert [row["x"] for row in local.history()] == [-1.0, *map(float, range(1000))]
    assert local.system()


def test_main_log_is_followed_frame_by_frame(tmp_path: Path) -> None:
    path = tmp_path / "main.tlog"
    follow = _agent.MainLog(path, (FileSaved, Finish))
    assert follow.new_records() == []  # no file yet
    path.write_bytes(runlog.header_bytes())
    assert follow.new_records() == []
    saved = FileSaved("a.txt", "live", 1, "0" * 64, 1.0, "/tmp/a.txt")
    metrics = runlog.frame_record(Metrics(0, 1.0, {"x": 1.0}))
    finish = runlog.frame_record(Finish(2.0, "finished"))
    with open(path, "ab") as file:
        file.write(metrics + runlog.frame_record(saved) + finish[:5])  # a frame being written
        file.flush()
        assert follow.new_records() == [saved]  # metrics are skipped
        file.write(finish[5:])
        file.flush()
        assert follow.new_records() == [Finish(2.0, "finished")]
        assert follow.new_records() == []
    follow._chunk = 4  # smaller than any frame: the chunk grows to fit
    follow.offset = 0
    assert follow.new_records() == [saved, Finish(2.0, "finished")]


def test_main_log_of_a_mapped_log_reads_past_no_zeros(tmp_path: Path) -> None:
    # The training process's log is mapped: the file goes on in reserved zeros. Following
    # it reads up to them and no further (the chunk once doubled on zeros to the file's end).
    path = tmp_path / "main.tlog"
    log = runlog.LogFile(path, mapped=True)
    assert path.stat().st_size > 2 * 1024 * 1024  # the reservation
    follow = _agent.MainLog(path, (FileSaved, Finish))
    follow._chunk = chunk = 1 << 16  # far less than the zeros ahead
    saved = FileSaved("a.txt", "live", 1, "0" * 64, 1.0, "/tmp/a.txt")
    for step in range(3000):
        assert log.put(runlog.frame_record(Metrics(step, 1.0, {"x": 12.5, "y": 0.0})))
    assert log.put(runlog.frame_record(saved))
    assert follow.new_records() == [saved]
    assert follow.new_records() == []
    assert follow.offset == log.end and follow._chunk == chunk
    finish = runlog.frame_record(Finish(2.0, "finished"))
    log._copy(log.end, memoryview(finish[:9]))  # a frame being copied: seen, not taken
    assert follow.new_records() == [] and follow._chunk == chunk
    assert log.put(finish)
    assert follow.new_records() == [Finish(2.0, "finished")]
    log.close()


class FakeNvml:
    """Just enough of pynvml to check device selection and readings without a GPU."""

    NVML_TEMPERATURE_GPU = 0
    NVML_CLOCK_SM = 1

    class NVMLError(Exception):
        pass

    class _Process:
        def __init__(self, pid: int, used: int | None) -> None:
            self.pid, self.usedGpuMemory = pid, used

    def __init__(self, uuids: list[str]) -> None:
        self.uuids = uuids

    def nvmlDeviceGetCount(self) -> int:
        return len(self.uuids)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        if not 0 <= index < len(self.uuids):
            raise self.NVMLError("invalid argument")
        return index

    def nvmlDeviceGetUUID(self, handle: int) -> str:
        return self.uuids[handle]

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> int:
        raise self.NVMLError("not found")

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:
        raise self.NVMLError("not supported")

    def nvmlDeviceGetComputeRunningProcesses(self, handle: int) -> list[FakeNvml._Process]:
        return [self._Process(10, 1000), self._Process(11, 500), self._Process(99, 7)]

    def nvmlDeviceGetGraphicsRunningProcesses(self, handle: int) -> list[FakeNvml._Process]:
        return [self._Process(10, 1000), self._Process(12, None)]

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> SimpleNamespace:
        return SimpleNamespace(gpu=42, memory=7)

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> SimpleNamespace:
        return SimpleNamespace(used=3, total=8, free=5)

    def nvmlDeviceGetTemperature(self, handle: int, sensor: int) -> int:
        return 55 if sensor == self.NVML_TEMPERATURE_GPU else -1

    def nvmlDeviceGetClockInfo(self, handle: int, clock: int) -> int:
        return 1500 if clock == self.NVML_CLOCK_SM else -1


@pytest.mark.parametrize(
    ("visible", "expected"),
    [
        (None, [0, 1, 2]),
        ("2,0", [2, 0]),
        ("1, 7, 0", [1]),  # CUDA ignores everything from an invalid entry on
        ("", []),
        ("-1", []),
        ("GPU-bbb", [1]),
        ("GPU-c,GPU-a", [2, 0]),
        ("GPU-zzz,0", []),
    ],
)
def test_cuda_visible_devices_chooses_and_orders_gpus(
    visible: str | None, expected: list[int]
) -> None:
    nvml = FakeNvml(["GPU-aaa111", "GPU-bbb222", "GPU-ccc333"])
    assert _system._visible_devices(nvml, visible) == expected


def test_gpu_readings_skip_what_the_device_cannot_tell() -> None:
    values = _system._device_values(FakeNvml(["GPU-a"]), 0, pids={10, 11, 12})
    assert "power_watts" not in values
    assert values["util_percent"] == 42 and values["temperature_c"] == 55
    assert values["memory_used_bytes"] == 3 and values["memory_total_bytes"] == 8
    assert values["sm_clock_mhz"] == 1500
    assert values["proc_memory_bytes"] == 1500  # 10 counted once, 12 unknown, 99 not ours


def test_a_rank_samples_only_the_gpu_memory_its_processes_hold() -> None:
    """A rank whose node's GPUs another rank samples whole reports, per device it uses,
    what its own processes hold there (W&B's per-process GPU memory); no device names."""
    gpus = _system.Gpus(enabled=False, own_only=True)
    gpus._nvml, gpus.handles = FakeNvml(["GPU-a", "GPU-b"]), [0, 1]
    assert gpus.sample({10, 11}) == {
        "gpu/0/proc_memory_bytes": 1500,
        "gpu/1/proc_memory_bytes": 1500,
    }
    assert gpus.sample({12, 13}) == {}  # memory unknown or nothing held: no key
    assert gpus.names() == [] and gpus.driver() is None
    whole = _system.Gpus(enabled=False)
    whole._nvml, whole.handles = gpus._nvml, [0]
    assert set(whole.sample({10})) > {"gpu/0/proc_memory_bytes", "gpu/0/util_percent"}


#: Every variable ``_ranks`` reads to place a rank on its node.
NODE_VARIABLES = (
    "LOCAL_RANK",
    "LOCAL_WORLD_SIZE",
    "CUDA_VISIBLE_DEVICES",
    *{name for pair in _ranks.LAUNCHER_RANKS + _ranks.LAUNCHER_SIZES for name in pair},
)
SRUN_NODE2_TASK0 = {"SLURM_PROCID": "4", "SLURM_LOCALID": "0", "SLURM_NTASKS_PER_NODE": "4"}


@pytest.mark.parametrize(
    ("env", "rank", "leader"),
    [
        ({}, 0, True),
        ({}, 4, False),  # no launcher says where it runs: rank 0 only
        ({"LOCAL_RANK": "0"}, 4, True),  # torchrun: a node's first process
        ({"LOCAL_RANK": "2"}, 0, False),
        (SRUN_NODE2_TASK0, 4, True),  # srun without torchrun: the second node's first task
        ({"SLURM_PROCID": "5", "SLURM_LOCALID": "1"}, 5, False),
        # a process srun started as task 0 spawned ranks 0-3: its variables, not their rank
        ({"SLURM_PROCID": "0", "SLURM_LOCALID": "0"}, 3, False),
        ({**SRUN_NODE2_TASK0, "LOCAL_RANK": "1"}, 4, False),  # torchrun under srun
        ({"OMPI_COMM_WORLD_RANK": "8", "OMPI_COMM_WORLD_LOCAL_RANK": "0"}, 8, True),
        ({"PMI_RANK": "9", "MPI_LOCALRANKID": "1"}, 9, False),
        ({"SLURM_PROCID": "x", "SLURM_LOCALID": "0"}, 4, False),  # not a number: not said
    ],
)
def test_each_node_has_one_leader_whatever_the_launcher(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], rank: int, leader: bool
) -> None:
    """The rank that samples a node's host and GPUs: its first process, as torchrun,
    srun or an MPI launcher number them; a node without one would go unsampled."""
    for name in NODE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert _ranks.local_leader(rank) is leader


@pytest.mark.parametrize(
    ("env", "rank", "split"),
    [
        ({"LOCAL_WORLD_SIZE": "4"}, 1, False),  # every rank sees every device
        ({"LOCAL_WORLD_SIZE": "4", "CUDA_VISIBLE_DEVICES": "0,1,2,3"}, 1, False),
        ({"LOCAL_WORLD_SIZE": "4", "CUDA_VISIBLE_DEVICES": "1"}, 1, True),  # one each
        ({"LOCAL_WORLD_SIZE": "4", "CUDA_VISIBLE_DEVICES": "2,3"}, 1, True),  # two each
        ({**SRUN_NODE2_TASK0, "SLURM_PROCID": "5", "CUDA_VISIBLE_DEVICES": "1"}, 5, True),
        ({**SRUN_NODE2_TASK0, "CUDA_VISIBLE_DEVICES": "0"}, 7, False),  # not srun's task
        ({"CUDA_VISIBLE_DEVICES": "1"}, 1, False),  # no launcher says how many share it
        ({"OMPI_COMM_WORLD_RANK": "3", "OMPI_COMM_WORLD_LOCAL_SIZE": "8",
          "CUDA_VISIBLE_DEVICES": "GPU-5d1c"}, 3, True),
    ],
)  # fmt: skip
def test_gpus_split_among_a_nodes_ranks_are_sampled_by_each(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], rank: int, split: bool
) -> None:
    """Where each rank sees only its own devices (``srun --gpus-per-task``, or a wrapper
    exporting ``CUDA_VISIBLE_DEVICES=$LOCAL_RANK``), the node's leader cannot sample the
    others' devices: each rank samples its own whole, and says so to its agent."""
    for name in NODE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert _ranks.devices_split(rank) is split
    argv = _agent_launch.command(Path("run"), _settings.resolve(mode="offline"), rank)
    assert argv[argv.index("--host-stats") + 1] == "0"
    assert argv[argv.index("--gpu-stats") + 1] == ("whole" if split else "own")


def test_an_agent_samples_its_gpus_as_its_launcher_says(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``--gpu-stats``: a rank that is not its node's leader samples its devices whole
    where they are its own (``whole``), else only the memory it holds there (``own``);
    without it, the devices go with the host's stats."""
    nvml = FakeNvml(["GPU-a"])
    fake = SimpleNamespace(
        **{name: getattr(nvml, name) for name in dir(nvml) if name.startswith(("nvml", "NVML"))}
    )
    fake.nvmlInit = fake.nvmlShutdown = lambda: None
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    keys: dict[tuple[str, str | None], set[str]] = {}
    for host, gpus in [("0", "whole"), ("0", "own"), ("0", None), ("1", None)]:
        argv = ["--run-dir", str(tmp_path), "--pid", str(os.getpid()), "--host-stats", host]
        argv += ["--gpu-stats", gpus] if gpus else []
        agent = _agent_args_agent(monkeypatch, argv)
        keys[(host, gpus)] = {k for k in agent.sampler.gpus.sample({10}) if k.startswith("gpu/")}
        agent.sampler.close()
        agent.log.close()
    whole = {f"gpu/0/{name}" for name in ("util_percent", "temperature_c", "proc_memory_bytes")}
    assert keys[("0", "whole")] >= whole and keys[("1", None)] >= whole
    assert keys[("0", "own")] == keys[("0", None)] == {"gpu/0/proc_memory_bytes"}


def _agent_args_agent(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> _agent.Agent:
    """The agent ``python -m trackline._agent ARGV`` makes, not run."""
    made: list[_agent.Agent] = []
    monkeypatch.setattr(_agent.Agent, "run", lambda self: made.append(self))
    monkeypatch.setattr(os, "nice", lambda increment: 0)  # this test process stays as it is
    _agent.main(argv)
    return made[0]


@pytest.mark.skipif(not nvml_present(), reason="no NVIDIA GPU here")
def test_gpu_stats_with_a_real_gpu(tmp_path: Path) -> None:
    sampler = _system.Sampler(os.getpid(), tmp_path, lambda what, exc: pytest.fail(what))
    try:
        values = sampler.sample()
        assert values["gpu/0/memory_total_bytes"] > 0 and 0 <= values["gpu/0/util_percent"] <= 100
        assert sampler.gpus.names() and sampler.gpus.driver()
    finally:
        sampler.close()


def _nobody_home(monkeypatch: pytest.MonkeyPatch, give_up_s: int) -> None:
    """Runs log to a server that is not there, their agents trying for ``give_up_s``."""
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("TRACKLINE_SERVER", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("TRACKLINE_API_KEY", "tl_nobody_home")
    monkeypatch.setenv("TRACKLINE_UPLOAD_GIVE_UP", str(give_up_s))


def _gone(pid: int, within_s: float = 30.0) -> bool:
    """Whether process ``pid`` (a child) exits within ``within_s``."""
    deadline = time.monotonic() + within_s
    while psutil.pid_exists(pid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        with contextlib.suppress(psutil.Error):
            if psutil.Process(pid).status() == "zombie":
                return True
        time.sleep(0.1)
    return not psutil.pid_exists(pid)


def test_agent_gives_up_uploading_to_a_server_that_never_comes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _nobody_home(monkeypatch, give_up_s=1)
    run = trackline.init(project="p")
    assert run.mode == "online" and run._agent is not None
    run.log({"a": 1.0})
    run.finish()
    assert _gone(run._agent.pid)
    assert "gave up uploading" in (run.dir / "agent.log").read_text()
    assert trackline.open_run(run.dir).history()[0]["a"] == 1.0  # still on disk for sync


def test_agent_stops_uploading_a_run_whose_directory_was_removed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A run deleted (``rm -rf``) while its agent waits for the server to come back: there
    is nothing left to upload, so the agent stops instead of retrying for a day."""
    import shutil

    _nobody_home(monkeypatch, give_up_s=600)
    run = trackline.init(project="p")
    assert run._agent is not None
    run.log({"a": 1.0})
    run.finish()
    assert not _gone(run._agent.pid, within_s=1.0)  # still trying
    shutil.rmtree(run.dir)
    assert _gone(run._agent.pid)


def test_packages_read_from_metadata_heads_match_the_full_parser() -> None:
    """``packages()`` reads only the head of each METADATA file (the full e-mail parser
    cost the agent half a second at start): the same names and versions as the parser."""
    import importlib.metadata

    from trackline import _environment

    parsed: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name and name not in parsed:
            parsed[name] = dist.version
    assert _environment.packages() == dict(sorted(parsed.items(), key=lambda i: i[0].lower()))
