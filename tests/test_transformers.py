"""``TracklineCallback`` for transformers: a tiny BERT trained by a real ``Trainer``, read back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")  # Trainer needs it

import trackline  # noqa: E402
from trackline.integrations import transformers as tl_hf  # noqa: E402
from trackline.integrations.transformers import TracklineCallback  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for name in ("TRACKLINE_LOG_MODEL", "TRACKLINE_WATCH"):
        monkeypatch.delenv(name, raising=False)


class Tokens(torch.utils.data.Dataset):  # type: ignore[misc]
    """Random token ids; the label is whether the first token is above 50."""

    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(0, 100, (n, 8), generator=g)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, Any]:
        ids = self.ids[i]
        return {
            "input_ids": ids,
            "attention_mask": torch.ones_like(ids),
            "labels": int(ids[0] > 50),
        }


def tiny_bert() -> Any:
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
    )
    return transformers.BertForSequenceClassification(config)


def make_trainer(tmp_path: Path, callbacks: list[Any] | None = None, **overrides: Any) -> Any:
    options: dict[str, Any] = dict(
        output_dir=str(tmp_path / "out"),
        max_steps=6,
        per_device_train_batch_size=4,
        logging_steps=2,
        eval_strategy="steps",
        eval_steps=3,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
        learning_rate=1e-3,
    )
    options.update(overrides)
    return transformers.Trainer(
        model=tiny_bert(),
        args=transformers.TrainingArguments(**options),
        train_dataset=Tokens(32, 0),
        eval_dataset=Tokens(8, 1),
        callbacks=callbacks,
    )


def test_train_evaluate_predict_checkpoints_and_watch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACKLINE_PROJECT", "hf-env")  # trackline.init reads it
    monkeypatch.setenv("TRACKLINE_LOG_MODEL", "checkpoint")
    monkeypatch.setenv("TRACKLINE_WATCH", "gradients")
    callback = TracklineCallback(tags=["bert"])
    trainer = make_trainer(
        tmp_path,
        [callback],
        save_strategy="steps",
        save_steps=3,
        metric_for_best_model="loss",
        run_name="tiny",
    )
    trainer.train()
    run = trackline.open_run(callback.run.dir)
    assert (run.project, run.name, run.tags, run.state) == ("hf-env", "tiny", ["bert"], "finished")

    # Flat, as W&B's callback writes it.
    assert run.config["learning_rate"] == 1e-3
    assert run.config["logging_steps"] == 2
    assert run.config["hidden_size"] == 32
    assert run.config["num_hidden_layers"] == 2
    assert run.config["model/num_parameters"] == trainer.model.num_parameters() == 37922

    history = run.history()
    assert [r["_step"] for r in history if "train/loss" in r] == [2, 4, 6]
    assert [r["_step"] for r in history if "eval/loss" in r] == [3, 6]
    assert {"train/learning_rate", "train/grad_norm", "train/epoch"} <= set(history[0])
    assert {"eval/runtime", "eval/samples_per_second"} <= set(history[1])
    assert not any(key.startswith("train/train_") for row in history for key in row)

    summary = run.summary
    assert summary["train/global_step"] == 6
    assert {"train_runtime", "train_loss", "total_flos"} <= set(summary)
    assert summary["best_metric"] == pytest.approx(
        min(r["eval/loss"] for r in history if "eval/loss" in r)
    )

    # TRACKLINE_LOG_MODEL=checkpoint: every checkpoint folder, a version of the model artifact
    saved = run.artifacts(f"model-{run.id}")
    assert [a.metadata["global_step"] for a in saved] == [3, 6]
    assert all({"model.safetensors", "config.json"} <= {f.path for f in a.files} for a in saved)
    # each is "best" if it was the best checkpoint when saved (the first one always is)
    best_step = int(summary["best_model_checkpoint"].split("-")[1])
    assert saved[0].aliases == ["latest", "best"]
    assert saved[1].aliases == (["latest", "best"] if best_step == 6 else ["latest"])

    # TRACKLINE_WATCH=gradients: histograms every logging_steps optimizer steps, on those rows' steps
    hists = run.histograms()
    assert sorted({h.step for h in hists}) == [2, 4, 6]
    assert "gradients/bert.embeddings.word_embeddings.weight" in {h.key for h in hists}
    assert all(not p._backward_hooks for p in trainer.model.parameters())  # unhooked at the end

    # evaluate() and predict() after training reopen the same run
    trainer.evaluate()
    trainer.predict(Tokens(8, 2))
    trackline.finish()
    run = trackline.open_run(callback.run.dir)
    assert run.starts == 2 and run.state == "finished"
    last = run.history()[-1]
    assert last["_step"] == 6 and {"eval/loss", "test/loss", "test/runtime"} <= set(last)


def test_log_model_end_saves_the_final_model(tmp_path: Path) -> None:
    run = trackline.init(project="hf")
    make_trainer(tmp_path, [TracklineCallback(log_model="end")], eval_strategy="no").train()
    assert run.state == "running"  # the user's run: not finished by the callback
    run.finish()
    read = trackline.open_run(run.dir)
    (final,) = read.artifacts()
    assert {"config.json", "model.safetensors"} <= {f.path for f in final.files}
    assert (final.aliases, final.metadata["global_step"]) == (["latest", "final"], 6)
    assert [r["_step"] for r in read.history()] == [2, 4, 6]


def test_only_the_world_process_zero_logs(tmp_path: Path) -> None:
    callback = TracklineCallback()
    args = transformers.TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    state = transformers.TrainerState(is_world_process_zero=False)
    control = transformers.TrainerControl()
    callback.on_train_begin(args, state, control, model=tiny_bert())
    callback.on_log(args, state, control, logs={"loss": 1.0})
    callback.on_train_end(args, state, control)
    assert callback.run is None and trackline.current_run() is None
    assert trackline.list_runs() == []


DDP_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
import trackline
from trackline.integrations.transformers import TracklineCallback
from test_transformers import make_trainer
from pathlib import Path

callback = TracklineCallback(project="hf-ddp", rank_metrics=True)
trainer = make_trainer(Path({out!r}), [callback], ddp_backend="gloo", eval_strategy="no")
trainer.train()
if callback.run is not None and callback.run._agent is not None:
    import _procs
    _procs.wait_gone(callback.run._agent.pid, 120)
"""


def test_rank_metrics_on_two_processes_log_into_one_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two gloo processes (as torchrun starts them): one run, rank 1's rows as rank1/..."""
    import os
    import subprocess
    import sys

    from _server import free_port

    script = tmp_path / "ddp.py"
    tests = str(Path(__file__).parent)
    script.write_text(DDP_SCRIPT.format(tests=tests, out=str(tmp_path)))
    port = str(free_port())
    children = []
    for rank in range(2):
        env = {
            **os.environ,
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": "2",
            "LOCAL_WORLD_SIZE": "2",
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": port,
            "TRACKLINE_DIR": str(tmp_path / "tl"),
        }
        children.append(subprocess.Popen([sys.executable, str(script)], env=env, cwd=tmp_path))
    try:
        assert [child.wait(timeout=300) for child in children] == [0, 0]
    finally:
        for child in children:
            child.kill()
    (run,) = trackline.list_runs(tmp_path / "tl")
    assert sorted(run.rank_dirs) == [1] and run.state == "finished"
    rows = [row for row in run.history() if "train/loss" in row]
    assert [row["_step"] for row in rows] == [2, 4, 6]
    assert all(row["rank1/train/loss"] == row["train/loss"] for row in rows)  # gathered: equal
    assert [(w["rank"], w["state"]) for w in run.writers] == [(0, "finished"), (1, "finished")]


def test_register_adds_report_to_trackline_and_import_does_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transformers.integrations import integration_utils

    registry = integration_utils.INTEGRATION_TO_CALLBACK
    assert "trackline" not in registry  # importing the module registered nothing
    with pytest.raises(ValueError, match="trackline is not supported"):
        make_trainer(tmp_path, report_to="trackline")
    monkeypatch.setitem(registry, "trackline", None)  # so that it is removed after the test
    tl_hf.register()
    assert registry["trackline"] is TracklineCallback
    trainer = make_trainer(tmp_path, report_to="trackline", eval_strategy="no")
    callbacks = [c for c in trainer.callback_handler.callbacks if isinstance(c, TracklineCallback)]
    assert len(callbacks) == 1
    trainer.train()
    run = trackline.open_run(callbacks[0].run.dir)
    assert [r["_step"] for r in run.history()] == [2, 4, 6]
    # The project (and any init argument) without an environment variable.
    tl_hf.register(project="hf-registered", tags=["reg"])
    trainer = make_trainer(tmp_path, report_to="trackline", eval_strategy="no")
    (callback,) = [
        c for c in trainer.callback_handler.callbacks if isinstance(c, TracklineCallback)
    ]
    trainer.train()
    run = trackline.open_run(callback.run.dir)
    assert (run.project, run.tags) == ("hf-registered", ["reg"])


def test_invalid_options() -> None:
    with pytest.raises(ValueError, match="log_model"):
        TracklineCallback(log_model="always")
    with pytest.raises(ValueError, match="watch"):
        TracklineCallback(watch="weights")
