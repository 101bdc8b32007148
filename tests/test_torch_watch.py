"""``trackline.watch``: histograms from real torch backward passes, read back from the run."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

import trackline  # noqa: E402
from trackline.integrations import torch as tl_torch  # noqa: E402
from trackline.integrations.torch import histogram  # noqa: E402

PARAMS = ["0.weight", "0.bias", "2.weight", "2.bias"]


def mlp() -> Any:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))


def train(
    model: Any, run: trackline.Run, steps: int, grads: dict[int, dict[str, Any]] | None = None
) -> None:
    """``steps`` iterations of forward, backward, step, log; keeps each step's gradients."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    g = torch.Generator().manual_seed(1)
    for i in range(steps):
        optimizer.zero_grad()
        loss = model(torch.randn(16, 4, generator=g)).pow(2).mean()
        loss.backward()
        if grads is not None:
            grads[i] = {n: p.grad.clone() for n, p in tl_torch._unwrap(model).named_parameters()}
        optimizer.step()
        run.log({"loss": loss})


@pytest.fixture(autouse=True)
def _unwatch_all() -> Any:
    yield
    tl_torch.unwatch()


def test_gradient_histograms_at_logged_steps() -> None:
    run = trackline.init(project="watch")
    model = mlp()
    trackline.watch(model, log="gradients", log_freq=2)
    grads: dict[int, dict[str, Any]] = {}
    train(model, run, 6, grads)
    run.finish()

    read = trackline.open_run(run.dir)
    hists = read.histograms()
    # backward passes 2, 4, 6 log; they belong to iterations 1, 3, 5, whose rows have those steps
    assert sorted({h.step for h in hists}) == [1, 3, 5]
    assert sorted({h.key for h in hists}) == sorted(f"gradients/{n}" for n in PARAMS)
    assert [row["_step"] for row in read.history()] == list(range(6))
    for h in hists:
        grad = grads[h.step][h.key.removeprefix("gradients/")]
        bins = 1 if grad.numel() == 1 else 64  # one value: one bin
        assert len(h.edges) == bins + 1 and len(h.counts) == bins
        assert sum(h.counts) == grad.numel()
        assert h.edges[0] == pytest.approx(grad.min().item())
        assert h.edges[-1] == pytest.approx(grad.max().item())


def test_parameters_and_all_and_include_filter() -> None:
    run = trackline.init(project="watch")
    model = mlp()
    run.watch(model, log="all", log_freq=3, include="2.*")  # Run.watch delegates here
    train(model, run, 6)
    run.finish()
    hists = trackline.open_run(run.dir).histograms()
    assert sorted({h.key for h in hists}) == [
        "gradients/2.bias",
        "gradients/2.weight",
        "parameters/2.bias",
        "parameters/2.weight",
    ]
    assert sorted({h.step for h in hists}) == [2, 5]
    weight = hists[[h.key for h in hists].index("parameters/2.weight")]
    assert sum(weight.counts) == 8


def test_callable_include_and_custom_bins() -> None:
    run = trackline.init(project="watch")
    model = mlp()
    trackline.watch(
        model, log="parameters", log_freq=1, include=lambda name: name.endswith("bias"), bins=8
    )
    train(model, run, 2)
    run.finish()
    hists = trackline.open_run(run.dir).histograms()
    assert sorted({h.key for h in hists}) == ["parameters/0.bias", "parameters/2.bias"]
    assert all(len(h.counts) in (1, 8) for h in hists)


def test_only_backward_passes_count_and_no_host_sync_between_logs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run = trackline.init(project="watch")
    model = mlp()
    handle = trackline.watch(model, log="all", log_freq=3)
    with torch.no_grad():
        for _ in range(5):
            model(torch.randn(2, 4))  # eval forwards: no backward, nothing counted
    assert handle.backwards == 0

    transfers: list[str] = []
    for name in ("tolist", "item", "cpu", "numpy"):
        original = getattr(torch.Tensor, name)

        def spy(
            self: Any, *args: Any, _original: Any = original, _name: str = name, **kwargs: Any
        ) -> Any:
            transfers.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, spy)
    # backward passes 1 and 2 do not log; pass 3 logs 4 gradient + 4 parameter histograms
    for expected_transfers in (0, 0, 8):
        transfers.clear()
        model(torch.randn(4, 4)).sum().backward()
        assert len(transfers) == expected_transfers, transfers
    assert handle.backwards == 3
    monkeypatch.undo()
    run.finish()
    assert len(trackline.open_run(run.dir).histograms()) == 8


def test_unwatch_removes_hooks_and_watch_replaces() -> None:
    run = trackline.init(project="watch")
    model = mlp()
    trackline.watch(model, log_freq=1)
    second = trackline.watch(model, log_freq=1)  # replaces the first
    assert all(len(p._backward_hooks or {}) == 1 for p in model.parameters())
    train(model, run, 1)
    assert second.backwards == 1
    trackline.unwatch(model)
    assert all(not p._backward_hooks for p in model.parameters())
    assert tl_torch._watches == {}
    train(model, run, 1)
    run.finish()
    assert sorted({h.step for h in trackline.open_run(run.dir).histograms()}) == [0]


def test_watched_model_pickles_without_warnings() -> None:
    run = trackline.init(project="watch")
    model = mlp()
    trackline.watch(model, log_freq=1)
    buffer = io.BytesIO()
    torch.save(model, buffer)  # the hooks are marked unserializable: no warning, not saved
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    assert all(not p._backward_hooks for p in loaded.parameters())
    run.finish()


def test_compiled_and_ddp_models_are_unwrapped(tmp_path: Path) -> None:
    import torch.distributed as dist

    run = trackline.init(project="watch")
    model = mlp()
    compiled = torch.compile(model, backend="eager")
    trackline.watch(compiled, log_freq=1)
    train(compiled, run, 1)
    trackline.unwatch(compiled)
    dist.init_process_group(
        "gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1
    )
    try:
        ddp = torch.nn.parallel.DistributedDataParallel(model)
        trackline.watch(ddp, log_freq=1)
        train(ddp, run, 1)
    finally:
        dist.destroy_process_group()
    run.finish()
    hists = trackline.open_run(run.dir).histograms()
    assert sorted({h.key for h in hists}) == sorted(f"gradients/{n}" for n in PARAMS)
    assert sorted({h.step for h in hists}) == [0, 1]


def test_finished_run_turns_the_hooks_off() -> None:
    run = trackline.init(project="watch")
    model = mlp()
    handle = trackline.watch(model, log_freq=1)
    run.finish()
    model(torch.randn(2, 4)).sum().backward()  # must not raise RunFinishedError
    assert handle.backwards == 0


def test_watch_needs_a_run_and_valid_arguments() -> None:
    with pytest.raises(RuntimeError, match=r"trackline\.init"):
        trackline.watch(mlp())
    run = trackline.init(project="watch")
    with pytest.raises(ValueError, match="log must be"):
        trackline.watch(mlp(), log="weights")
    with pytest.raises(ValueError, match="log_freq"):
        trackline.watch(mlp(), log_freq=0)
    with pytest.raises(TypeError, match=r"nn\.Module"):
        trackline.watch(object())
    run.finish()


def test_log_graph_saves_the_module_tree() -> None:
    run = trackline.init(project="watch")
    trackline.watch(mlp(), log_graph=True)
    run.finish()
    read = trackline.open_run(run.dir)
    assert "model_graph.txt" in read.files
    assert "Linear(in_features=4" in (run.dir / "files" / "model_graph.txt").read_text()


def test_histogram_skips_non_finite_values_and_handles_dtypes() -> None:
    edges, counts = histogram(torch.tensor([1.0, math.nan, math.inf, 3.0, 2.0, -math.inf]), bins=4)  # type: ignore[misc]
    assert edges == [1.0, 1.5, 2.0, 2.5, 3.0]
    assert counts == [1, 0, 1, 1]
    assert histogram(torch.tensor([math.nan, math.inf])) is None
    assert histogram(torch.tensor([])) is None
    assert histogram(torch.full((5,), 2, dtype=torch.int64)) == ([2.0, 2.0], [5])
    edges, counts = histogram(torch.linspace(-1, 1, 100, dtype=torch.bfloat16), bins=10)  # type: ignore[misc]
    assert sum(counts) == 100 and edges[0] == -1.0 and edges[-1] == 1.0
    assert histogram(torch.tensor([[0.0, 1.0]]).to_sparse(), bins=2) == ([0.0, 0.5, 1.0], [1, 1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_histograms_on_the_device_without_sync_between_logs() -> None:
    run = trackline.init(project="watch")
    model = mlp().cuda()
    trackline.watch(model, log="all", log_freq=2)
    for i in range(4):
        loss = model(torch.randn(16, 4, device="cuda")).pow(2).mean()
        # backward passes 1 and 3 do not log: any host sync there is an error
        torch.cuda.set_sync_debug_mode("error" if i % 2 == 0 else "default")
        try:
            loss.backward()
        finally:
            torch.cuda.set_sync_debug_mode("default")
        run.log({"loss": loss})
    run.finish()
    hists = trackline.open_run(run.dir).histograms()
    assert sorted({h.step for h in hists}) == [1, 3]
    assert {h.key for h in hists} == {
        f"{kind}/{n}" for kind in ("gradients", "parameters") for n in PARAMS
    }
    values = torch.randn(1000, generator=torch.Generator().manual_seed(0))
    on_gpu, on_cpu = histogram(values.cuda(), bins=10), histogram(values, bins=10)
    assert on_gpu is not None and on_cpu is not None
    assert on_gpu[0] == pytest.approx(on_cpu[0])
    assert sum(on_gpu[1]) == 1000 and on_gpu[1] == pytest.approx(on_cpu[1], abs=1)


def test_device_values_are_read_together_as_each_alone() -> None:
    """``resolve_many`` reads a batch's device values with one copy per dtype; what
    each gets is what its own ``item()`` gives (here on CPU tensors, the same code)."""
    from trackline._values import Deferred, resolve_many

    tensors = [
        torch.tensor(1.5),
        torch.tensor([[2.25]]),
        torch.tensor(3.0, dtype=torch.bfloat16),
        torch.tensor(2**40 + 1, dtype=torch.int64),
        torch.tensor(True),
        torch.tensor(float("nan")),
        torch.tensor([7], dtype=torch.int32),
        torch.tensor(-0.5, dtype=torch.float16),
        torch.tensor(4.0, dtype=torch.bfloat16),
    ]
    together = [Deferred(t) for t in tensors]
    resolve_many(together)
    # float32 and bfloat16 were read in a copy each; a dtype alone is left to item()
    read = [d.read is not None for d in together]
    assert read == [True, True, True, False, False, True, False, False, True]
    alone = [Deferred(t).resolve() for t in tensors]
    got = [d.resolve() for d in together]
    assert [repr(v) for v in got] == [repr(v) for v in alone]
    assert [type(v) for v in got] == [type(v) for v in alone]
    assert got[3] == 2**40 + 1 and got[4] == 1.0


def test_a_burst_of_tensor_rows_is_logged_exactly() -> None:
    run = trackline.init(project="values")
    for step in range(3000):
        run.log({"a": torch.tensor(step / 4), "b": torch.tensor(step, dtype=torch.int64)})
    run.finish()
    rows = trackline.open_run(run.dir).history()
    assert [(r["a"], r["b"]) for r in rows] == [(s / 4, s) for s in range(3000)]
