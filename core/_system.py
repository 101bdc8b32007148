"""System statistics for the agent: the training process tree, the host and the GPUs.

Every collector returns flat ``{key: float}`` values and may raise; the
:class:`Sampler` runs each one separately, so one failing collector costs only
its own keys.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

#: Called with a collector's name and its exception; the agent logs it once.
OnError = Callable[[str, BaseException], None]


class ProcessTree:
    """The training process and all its descendants, summed.

    The ``psutil.Process`` objects are kept between samples because
    ``cpu_percent`` measures from the previous call on the same object.
    """

    def __init__(self, pid: int) -> None:
        self._root = psutil.Process(pid)
        self._known: dict[int, psutil.Process] = {}
        #: pids measured by the last sample (to match GPU processes against).
        self.pids: set[int] = set()
        self.sample()  # primes cpu_percent, whose first reading is meaningless

    def _members(self) -> list[psutil.Process]:
        try:
            found = [self._root, *self._root.children(recursive=True)]
        except psutil.Error:  # the training process is gone
            return []
        # The agent is a child of the training process: leave it and its git out.
        me = psutil.Process()
        ours = {me.pid, *(p.pid for p in me.children(recursive=True))}
        members: list[psutil.Process] = []
        known: dict[int, psutil.Process] = {}
        for process in found:
            if process.pid in ours:
                continue
            cached = self._known.get(process.pid)
            # Equality compares pid and creation time, so a reused pid is a new process.
            if cached is not None and cached == process:
                process = cached
            known[process.pid] = process
            members.append(process)
        self._known = known
        return members

    def sample(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        self.pids = set()
        for process in self._members():
            try:
                values = _process_values(process)
            except psutil.Error:  # vanished or not ours to read
                continue
            self.pids.add(process.pid)
            for key, value in values.items():
                totals[key] = totals.get(key, 0.0) + value
        totals["proc/count"] = float(len(self.pids))
        return totals


def _process_values(process: psutil.Process) -> dict[str, float]:
    with process.oneshot():
        values = {
            "proc/cpu_percent": process.cpu_percent(None),
            # Summed RSS counts pages shared by forked workers more than once.
            "proc/rss_bytes": float(process.memory_info().rss),
            "proc/threads": float(process.num_threads()),
        }
    # Optional counters: missing on some platforms, denied for some processes.
    try:
        # Descriptors rather than open_files(), which reads a link per descriptor.
        if hasattr(process, "num_fds"):
            values["proc/open_files"] = float(process.num_fds())
        else:
            values["proc/open_files"] = float(process.num_handles())
    except psutil.Error:
        pass
    try:
        io = process.io_counters()
        values["proc/read_bytes"] = float(io.read_bytes)
        values["proc/write_bytes"] = float(io.write_bytes)
    except (psutil.Error, AttributeError):
        pass
    return values


def host_cpu_memory() -> dict[str, float]:
    memory = psutil.virtual_memory()
    return {
        "host/cpu_percent": psutil.cpu_percent(None),
        "host/memory_percent": float(memory.percent),
        "host/memory_used_bytes": float(memory.used),
    }


def host_disk(path: Path) -> dict[str, float]:
    """Usage of the volume holding ``path`` (the run directory)."""
    usage = psutil.disk_usage(os.fspath(path))
    return {"host/disk_percent": float(usage.percent), "host/disk_used_bytes": float(usage.used)}


def host_network() -> dict[str, float]:
    # psutil has no per-process network counters; these are the host's, since boot.
    counters = psutil.net_io_counters()
    if counters is None:
        return {}
    return {
        "host/net_sent_bytes": float(counters.bytes_sent),
        "host/net_recv_bytes": float(counters.bytes_recv),
    }


class Gpus:
    """The GPUs this run may use, through NVML; none where there is no NVIDIA driver.

    ``gpu/{i}`` numbers the devices as CUDA does in the training process: the
    order of ``CUDA_VISIBLE_DEVICES`` where it is set. ``own_only``: only what this
    process tree holds on each device (``proc_memory_bytes``, for the devices it
    uses), for a rank whose node's devices another rank samples whole.
    """

    def __init__(self, enabled: bool = True, own_only: bool = False) -> None:
        self._nvml: Any = None
        self._own_only = own_only
        self.handles: list[Any] = []
        if not enabled:
            return
        try:
            # The deprecated ``pynvml`` package warns on import; that is no news for agent.log.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                import pynvml
        except ImportError:
            return
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError:  # no GPU or no driver: simply no GPU stats
            return
        self._nvml = pynvml
        try:
            self.handles = _visible_devices(pynvml, os.environ.get("CUDA_VISIBLE_DEVICES"))
        except pynvml.NVMLError:
            self.close()

    def names(self) -> list[str]:
        if self._own_only:  # the node's sampling rank records the devices
            return []
        return [_text(self._nvml.nvmlDeviceGetName(h)) for h in self.handles]

    def driver(self) -> str | None:
        if self._nvml is None or self._own_only:
            return None
        return _text(self._nvml.nvmlSystemGetDriverVersion())

    def sample(self, pids: set[int]) -> dict[str, float]:
        """Per-device stats; ``proc_memory_bytes`` is what the processes ``pids`` hold.

        In a container NVML may report host pids, which then match none of ``pids``.
        """
        values: dict[str, float] = {}
        for i, handle in enumerate(self.handles):
            if self._own_only:
                held = _process_memory(self._nvml, handle, pids)
                if held:  # a device this rank does not use adds no key
                    values[f"gpu/{i}/proc_memory_bytes"] = held
                continue
            for name, value in _device_values(self._nvml, handle, pids).items():
                values[f"gpu/{i}/{name}"] = value
        return values

    def close(self) -> None:
        if self._nvml is not None:
            with contextlib.suppress(self._nvml.NVMLError):
                self._nvml.nvmlShutdown()
        self._nvml = None
        self.handles = []


def _device_values(nvml: Any, handle: Any, pids: set[int]) -> dict[str, float]:
    """One device's readings; a reading the device does not support is left out."""
    readings: dict[str, Callable[[], float]] = {
        "util_percent": lambda: nvml.nvmlDeviceGetUtilizationRates(handle).gpu,
        "memory_used_bytes": lambda: nvml.nvmlDeviceGetMemoryInfo(handle).used,
        "memory_total_bytes": lambda: nvml.nvmlDeviceGetMemoryInfo(handle).total,
        "power_watts": lambda: nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0,  # milliwatts
        "temperature_c": lambda: nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU),
        "sm_clock_mhz": lambda: nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_SM),
        "proc_memory_bytes": lambda: _process_memory(nvml, handle, pids),
    }
    values: dict[str, float] = {}
    for name, read in readings.items():
        try:
            values[name] = float(read())
        except nvml.NVMLError:
            continue
    return values


def _visible_devices(nvml: Any, visible: str | None) -> list[Any]:
    count = int(nvml.nvmlDeviceGetCount())
    if visible is None:
        return [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
    handles: list[Any] = []
    for entry in visible.split(","):
        handle = _device(nvml, entry.strip(), count)
        if handle is None:  # CUDA ignores everything from the first invalid entry on
            break
        handles.append(handle)
    return handles


def _device(nvml: Any, entry: str, count: int) -> Any:
    """The device a ``CUDA_VISIBLE_DEVICES`` entry names: an index or a (prefix of a) UUID."""
    if entry.isdigit():
        return nvml.nvmlDeviceGetHandleByIndex(int(entry)) if int(entry) < count else None
    if not entry or entry.startswith("-"):
        return None
    for i in range(count):
        handle = nvml.nvmlDeviceGetHandleByIndex(i)
        if _text(nvml.nvmlDeviceGetUUID(handle)).startswith(entry):
            return handle
    try:  # a MIG device is not among the indexed ones
        return nvml.nvmlDeviceGetHandleByUUID(entry)
    except nvml.NVMLError:
        return None


def _process_memory(nvml: Any, handle: Any, pids: set[int]) -> int:
    used: dict[int, int] = {}
    for query in (
        nvml.nvmlDeviceGetComputeRunningProcesses,
        nvml.nvmlDeviceGetGraphicsRunningProcesses,
    ):
        for process in query(handle):
            if process.pid in pids and process.usedGpuMemory is not None:
                # A process can be in both lists; count it once.
                used[process.pid] = max(used.get(process.pid, 0), int(process.usedGpuMemory))
    return sum(used.values())


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


class Sampler:
    """All collectors together: one call, one flat dict of values."""

    def __init__(
        self,
        pid: int,
        run_dir: Path,
        on_error: OnError,
        host: bool = True,
        gpus_whole: bool | None = None,
    ) -> None:
        """``host=False``: the process tree only, with the GPU memory it holds (another
        rank on this node samples the host and its GPUs whole). ``gpus_whole``: sample the
        devices this process sees whole even so (a node whose devices are split among its
        ranks, ``_ranks.devices_split``); by default, with the host."""
        self._on_error = on_error
        self._host = host
        self._run_dir = run_dir
        self.tree: ProcessTree | None = None
        try:
            self.tree = ProcessTree(pid)
        except psutil.Error as exc:
            on_error("process tree", exc)
        self.gpus = Gpus(own_only=not (host if gpus_whole is None else gpus_whole))
        psutil.cpu_percent(None)  # prime the host's counter too

    def sample(self) -> dict[str, float]:
        values: dict[str, float] = {}
        tree = self.tree
        collectors: list[tuple[str, Callable[[], dict[str, float]]]] = []
        if self._host:
            collectors += [
                ("cpu and memory", host_cpu_memory),
                ("disk", lambda: host_disk(self._run_dir)),
                ("network", host_network),
            ]
        if tree is not None:
            collectors.insert(0, ("process tree", tree.sample))
        if self.gpus.handles:
            # After the tree's sample, so that its pids are this moment's.
            collectors.append(("gpu", lambda: self.gpus.sample(tree.pids if tree else set())))
        for name, collect in collectors:
            try:
                values.update(collect())
            except Exception as exc:  # one collector must not stop the others
                self._on_error(name, exc)
        return values

    def close(self) -> None:
        self.gpus.close()
