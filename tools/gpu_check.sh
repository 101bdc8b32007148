#!/bin/bash
# The GPU checks, on a machine with a CUDA device (the lent device machine: no package
# registry, its own python3 with torch). The server's packages travel as cp312 wheels in .whl/,
# fetched here with `pip download --no-deps --only-binary=:all: --python-version 3.12` (msgspec,
# fastapi, starlette, pydantic, pydantic_core, annotated-types, typing-inspection, uvicorn,
# httptools, SQLAlchemy, greenlet, orjson, typing_extensions); trackline itself is put together from the tree, as
# pyproject.toml maps it. Everything it prints goes to $OUT too.
#   1. what the machine is; 2. run.log of CUDA values, cost per call (``cost``);
#   3. the tests that need CUDA or NVML (``tests``); 4. bench_live: 16 writers, 1 M
#   points/s (``live``). Arguments name the steps to run (all by default).
set -u
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
rm -rf /tmp/pkg && mkdir -p /tmp/pkg && cp -r core /tmp/pkg/trackline \
    && cp -r integrations /tmp/pkg/trackline/integrations && cp -r server /tmp/pkg/trackline/server
export PYTHONPATH=/tmp/pkg:/tmp/site PYTHONUNBUFFERED=1

{
    nvidia-smi -L; nproc; free -g | head -2; ls /usr/lib/postgresql 2>&1
    python3 -c "import torch, trackline, trackline.server.app; print('torch', torch.__version__, 'gpus', torch.cuda.device_count())"
} 2>&1 | tee "$OUT/info.txt"
steps=" ${*:-cost tests live} "

[[ $steps == *" cost "* ]] && python3 - <<'PY' 2>&1 | tee "$OUT/log_cost.txt"
import os, tempfile, time
os.environ["TRACKLINE_DIR"] = tempfile.mkdtemp()
import torch, trackline
run = trackline.init(project="cost", mode="offline")
x = torch.tensor(0.5, device="cuda")
cpu = torch.tensor(0.5)
for label, value in (("float", 0.5), ("cpu tensor", cpu), ("cuda tensor", x)):
    for step in range(2000):
        run.log({"v": value})
    t = time.perf_counter()
    for step in range(20000):
        run.log({"v": value})
    print(f"log of one {label}: {(time.perf_counter() - t) / 20000 * 1e6:.2f} us per call")
run.finish()
rows = trackline.open_run(run.dir).history()
print("rows", len(rows), "all 0.5:", all(r["v"] == 0.5 for r in rows))
# What a CUDA value's log() is made of, each alone.
from trackline import _values
def per_call(fn, n=20000):
    for _ in range(1000):
        fn()
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n * 1e6
dev = x.device
for label, fn in (
    ("x.device", lambda: x.device),
    ("current_stream(device)", lambda: torch.cuda.current_stream(dev)),
    ("x.detach().clone()", lambda: x.detach().clone()),
    ("to_scalar(x)", lambda: _values.to_scalar(x)),
):
    print(f"{label}: {per_call(fn):.2f} us")
torch.cuda.synchronize()
# Why the read is queued on the value's stream: a thread reading on its default stream.
import threading
side = torch.cuda.Stream()
for on_stream in (False, True):
    wrong = 0
    for trial in range(5):
        with torch.cuda.stream(side):
            a = torch.ones((8192, 8192), device="cuda")
            for _ in range(12):
                a = (a @ a) / 8192
            copy = (a.mean() + trial).clone()
        seen = []
        def read():
            if on_stream:
                with torch.cuda.stream(side):
                    seen.append(copy.item())
            else:
                seen.append(copy.item())
        reader = threading.Thread(target=read); reader.start(); reader.join()
        wrong += seen[0] != 1.0 + trial
        torch.cuda.synchronize()
    print(f"read from another thread, on the side stream={on_stream}: {wrong} of 5 wrong")
PY

[[ $steps == *" tests "* ]] && timeout 240 python3 -m pytest -q -W default -p no:cacheprovider -rs tests/test_gpu.py \
    tests/test_torch_watch.py tests/test_agent.py::test_gpu_stats_with_a_real_gpu \
    tests/test_agent.py::test_finished_run_has_samples_and_environment 2>&1 | tee "$OUT/tests.txt"

[[ $steps == *" live "* ]] && timeout 330 python3 bench/bench_live.py --writers 16 --rate 1000000 --seconds 30 \
    --backends sqlite --no-mlflow --json "$OUT/live.json" 2>&1 | tee "$OUT/live.txt"
