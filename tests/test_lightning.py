"""``TracklineLogger``: real Lightning fits (both packages, and DDP on two CPU processes), read back."""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("lightning_utilities")

import trackline  # noqa: E402
from _server import fixture_server  # noqa: E402, F401 - the server fixture

pytestmark = [
    pytest.mark.slow,
    # Lightning 2.6's pytree shim on torch 2.13: a framework notice, not trackline's.
    pytest.mark.filterwarnings(
        "ignore:`isinstance\\(treespec, LeafSpec\\)` is deprecated:FutureWarning"
    ),
]

PACKAGES = []
for _package in ("lightning.pytorch", "pytorch_lightning"):
    try:
        __import__(_package)
        PACKAGES.append(_package)
    except ImportError:
        pass
if not PACKAGES:
    pytest.skip("neither lightning nor pytorch-lightning is installed", allow_module_level=True)

from trackline.integrations import lightning as tl_lightning  # noqa: E402


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The logger's ``save_dir`` defaults to the working directory, where checkpoints go."""
    monkeypatch.chdir(tmp_path)


def lightning(package: str) -> Any:
    return __import__(package, fromlist=["Trainer"])


def logger_class(package: str) -> Any:
    return (
        tl_lightning.TracklineLogger
        if package == "lightning.pytorch"
        else tl_lightning.PLTracklineLogger
    )


def make_module(package: str, fail_at: int | None = None, **hparams: Any) -> Any:
    L = lightning(package)

    class Regressor(L.LightningModule):  # type: ignore[misc,name-defined]
        def __init__(
            self,
            hidden: int = 8,
            lr: float = 0.1,
            optimizer: Any = torch.optim.SGD,
            extra: Any = None,
        ) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.net = torch.nn.Sequential(
                torch.nn.Linear(4, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1)
            )

        def training_step(self, batch: Any, index: int) -> Any:
            if fail_at is not None and self.global_step == fail_at:
                raise RuntimeError("boom")
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.net(x), y)
            self.log("train/loss", loss)
            return loss

        def validation_step(self, batch: Any, index: int) -> None:
            x, y = batch
            self.log("val/loss", torch.nn.functional.mse_loss(self.net(x), y))

        def test_step(self, batch: Any, index: int) -> None:
            x, y = batch
            self.log("test/loss", torch.nn.functional.mse_loss(self.net(x), y))

        def configure_optimizers(self) -> Any:
            return self.hparams.optimizer(self.parameters(), lr=self.hparams.lr)

    torch.manual_seed(0)
    return Regressor(**hparams)


def loader(n: int = 16) -> Any:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    return torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, x.sum(1, keepdim=True)), batch_size=4
    )


def trainer(package: str, logger: Any, tmp_path: Path, **kwargs: Any) -> Any:
    L = lightning(package)
    checkpoint = L.callbacks.ModelCheckpoint(monitor="val/loss", save_top_k=1)
    options: dict[str, Any] = dict(
        max_epochs=2,
        accelerator="cpu",
        devices=1,
        logger=logger,
        callbacks=[checkpoint],
        log_every_n_steps=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    options.update(kwargs)
    return L.Trainer(**options)


@pytest.mark.parametrize("package", PACKAGES)
def test_fit_logs_hparams_metrics_checkpoints_next_to_csv_logger(
    package: str, tmp_path: Path
) -> None:
    L = lightning(package)
    logger = logger_class(package)(project="pl", name="fit", log_model="all", tags=["t"])
    csv = L.loggers.CSVLogger(tmp_path / "csv")
    module = make_module(package, extra={"nested": {"depth": 2}})
    logger.watch(module, log="all", log_freq=2)
    fit = trainer(package, [logger, csv], tmp_path)
    fit.fit(module, loader(), loader(8))

    # By id: `logger.experiment` after a fit would reopen the run (as `test` does).
    run = trackline.open_run(logger.version)
    assert (run.project, run.name, run.tags, run.state) == ("pl", "fit", ["t"], "finished")
    assert run.id == logger.version and logger.name == "pl"
    assert run.config == {
        "hidden": 8,
        "lr": 0.1,
        "optimizer": "torch.optim.sgd.SGD",
        "extra": {"nested": {"depth": 2}},
    }
    history = run.history()
    # 4 batches per epoch; Lightning logs each step at the number of optimizer steps before it
    assert [row["_step"] for row in history] == list(range(8))
    assert all("train/loss" in row for row in history)
    assert [row["_step"] for row in history if "val/loss" in row] == [3, 7]
    assert [row["epoch"] for row in history] == [0] * 4 + [1] * 4
    # log_model="all": each checkpoint as it is written, a version of the model artifact
    saved = run.artifacts(f"model-{run.id}")
    assert [a.metadata["file"] for a in saved] == ["epoch=0-step=4.ckpt", "epoch=1-step=8.ckpt"]
    assert [f.path for a in saved for f in a.files] == [a.metadata["file"] for a in saved]
    assert all(a.metadata["monitor"] == "val/loss" for a in saved)
    val_losses = [row["val/loss"] for row in history if "val/loss" in row]
    assert [a.metadata["score"] for a in saved] == pytest.approx(val_losses)
    # save_top_k=1: each was the best when it was written (or the second was not kept as best)
    best = Path(fit.checkpoint_callback.best_model_path).name
    assert saved[0].aliases == ["latest", "best"]
    assert saved[1].aliases == (["latest", "best"] if best == "epoch=1-step=8.ckpt" else ["latest"])
    # logger.watch: every second backward pass, at the step of that batch's row
    assert sorted({h.step for h in run.histograms()}) == [1, 3, 5, 7]
    assert {h.key for h in run.histograms()} >= {"gradients/net.0.weight", "parameters/net.2.bias"}
    trackline.unwatch()
    # the CSV logger next to it got the same metrics
    assert (Path(csv.log_dir) / "metrics.csv").read_text().count("\n") >= 8


@pytest.mark.parametrize("package", PACKAGES[:1])
def test_log_model_true_logs_at_end_and_test_reopens_the_run(package: str, tmp_path: Path) -> None:
    logger = logger_class(package)(project="pl", log_model=True)
    fit = trainer(package, logger, tmp_path, max_epochs=3)
    module = make_module(package)
    fit.fit(module, loader(), loader(8))
    run = trackline.open_run(logger.version)
    best = Path(fit.checkpoint_callback.best_model_path).name
    (saved,) = run.artifacts()  # only what exists at the end
    assert (saved.metadata["file"], saved.aliases) == (best, ["latest", "best"])
    assert run.state == "finished"

    fit.test(module, loader(8))
    run = trackline.open_run(logger.version)
    assert (run.starts, run.state) == (2, "finished")
    assert [row["_step"] for row in run.history(keys=["test/loss"])] == [12]


@pytest.mark.parametrize("package", PACKAGES[:1])
def test_failed_fit_marks_the_run_failed(package: str, tmp_path: Path) -> None:
    logger = logger_class(package)(project="pl")
    with pytest.raises(RuntimeError, match="boom"):
        trainer(package, logger, tmp_path).fit(make_module(package, fail_at=2), loader(), loader(8))
    run = trackline.open_run(logger.version)
    assert run.state == "failed"
    assert [row["_step"] for row in run.history()] == [0, 1]


@pytest.mark.parametrize("package", PACKAGES[:1])
def test_log_hyperparams_namespace_prefix_and_a_user_run(package: str) -> None:
    mine = trackline.init(project="mine")
    logger = logger_class(package)(prefix="fold1")
    logger.log_hyperparams(argparse.Namespace(lr=0.5, layers=[1, 2], activation=torch.nn.ReLU))
    logger.log_metrics({"loss": 1.0}, step=3)
    logger.finalize("success")
    assert mine.state == "running"  # not the logger's to finish
    assert logger.version == mine.id
    mine.finish()
    run = trackline.open_run(mine.dir)
    assert run.config == {
        "lr": 0.5,
        "layers": [1, 2],
        "activation": "torch.nn.modules.activation.ReLU",
    }
    assert run.history() == [{"_step": 3, "_time": run.history()[0]["_time"], "fold1-loss": 1.0}]


@pytest.mark.parametrize("package", PACKAGES[:1])
def test_pickling_drops_the_run_and_keeps_the_id(package: str) -> None:
    logger = logger_class(package)(project="pl")
    assert logger._lease.run is None
    version = logger.version
    logger.log_metrics({"a": 1.0}, step=0)
    copy = pickle.loads(pickle.dumps(logger))
    assert copy._lease.run is None and copy.version == version
    assert logger._lease.run.state == "finished"  # handed over: the unpickling process reopens it
    copy.log_metrics({"a": 2.0}, step=1)
    copy.finalize("success")
    run = trackline.open_run(copy.version)
    assert (run.id, run.starts, run.state) == (version, 2, "finished")
    assert [row["a"] for row in run.history()] == [1.0, 2.0]


@pytest.mark.parametrize("package", PACKAGES[:1])
def test_checkpoints_on_the_server(
    package: str, tmp_path: Path, server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checkpoints as artifact versions on the server: ``best`` and ``latest`` resolve."""
    from _server import ADMIN_KEY, wait_for
    from trackline._client import Api

    monkeypatch.setenv("TRACKLINE_SERVER", server.url)
    monkeypatch.setenv("TRACKLINE_API_KEY", ADMIN_KEY)
    monkeypatch.setenv("TRACKLINE_UPLOAD_BACKOFF_MAX", "0.5")
    logger = logger_class(package)(project="plsrv", log_model="all")
    fit = trainer(package, logger, tmp_path, max_epochs=3)
    fit.fit(make_module(package), loader(), loader(8))
    best_name = Path(fit.checkpoint_callback.best_model_path).name
    path = f"plsrv/model-{logger.version}"
    with Api(server.url, ADMIN_KEY) as api:
        wait_for(lambda: api.artifact(f"{path}:latest").complete, timeout=60, what="uploads")
        versions = api.artifact_versions(path)
        assert [v.version for v in versions] == [0, 1, 2]
        assert api.artifact(f"{path}:latest").version == 2
        best = api.artifact(f"{path}:best")
        assert best.metadata["file"] == best_name
        root = best.download(tmp_path / "best")
        assert (root / best_name).stat().st_size == best.size


def fit_ddp_spawn(tmp_path: Path, **logger_options: Any) -> Any:
    """A fit on two CPU processes (``ddp_spawn``); returns its logger."""
    package = PACKAGES[0]
    logger = logger_class(package)(project="ddp", **logger_options)
    fit = trainer(
        package,
        logger,
        tmp_path,
        strategy="ddp_spawn",
        devices=2,
        limit_train_batches=2,
        limit_val_batches=1,
    )
    fit.fit(_DDPModule(), loader(16), loader(16))
    return logger


def test_ddp_spawn_on_two_cpu_processes_yields_one_run(tmp_path: Path) -> None:
    logger = fit_ddp_spawn(tmp_path, log_model=True)
    runs = trackline.list_runs()
    assert [(r.id, r.state) for r in runs] == [(logger.version, "finished")]
    run = runs[0]
    assert [row["_step"] for row in run.history()] == [0, 1, 2, 3]
    assert [row["rank"] for row in run.history()] == [0.0] * 4  # logged from rank zero only
    assert run.config == {"hidden": 4}
    assert [a.metadata["file"] for a in run.artifacts()] == ["epoch=1-step=4.ckpt"]


def test_ddp_spawn_with_rank_metrics_logs_every_rank_into_one_run(tmp_path: Path) -> None:
    logger = fit_ddp_spawn(tmp_path, rank_metrics=True)
    runs = trackline.list_runs()
    assert [(r.id, r.state) for r in runs] == [(logger.version, "finished")]
    run = runs[0]  # rank 1's directory (ranks/1/) read with it
    assert sorted(run.rank_dirs) == [1]
    rows = run.history()
    assert [row["_step"] for row in rows] == [0, 1, 2, 3]
    assert [row["rank"] for row in rows] == [0.0] * 4
    assert [row["rank1/rank"] for row in rows] == [1.0] * 4
    assert [(w["rank"], w["state"]) for w in run.writers] == [(0, "finished"), (1, "finished")]
    assert run.config == {"hidden": 4}  # rank 0's


# Module-level, so that ddp_spawn can pickle it into the worker processes.
_L = lightning(PACKAGES[0])


class _DDPModule(_L.LightningModule):  # type: ignore[misc,name-defined]
    def __init__(self, hidden: int = 4) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Linear(4, 1)

    def training_step(self, batch: Any, index: int) -> Any:
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        self.log("train/loss", loss)
        self.log("rank", float(self.global_rank))
        return loss

    def validation_step(self, batch: Any, index: int) -> None:
        x, y = batch
        self.log("val/loss", torch.nn.functional.mse_loss(self.net(x), y), sync_dist=True)

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=0.1)


@pytest.mark.parametrize("package", PACKAGES)
def test_lightning_cli_without_save_dir(
    package: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LightningCLI saves its config to trainer.log_dir, which must not be None."""
    pytest.importorskip("jsonargparse")
    L = lightning(package)
    cli_module = __import__(f"{package}.cli", fromlist=["LightningCLI"])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", ["train.py"])  # pytest's own arguments are not the CLI's
    monkeypatch.setenv("JSONARGPARSE_DEPRECATION_WARNINGS", "off")  # Lightning's, not ours
    base = type(make_module(package))

    class Model(base):  # type: ignore[misc,valid-type]
        def __init__(self, hidden: int = 8, lr: float = 0.1) -> None:
            super().__init__(hidden=hidden, lr=lr)

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

    class Data(L.LightningDataModule):  # type: ignore[misc,name-defined]
        def train_dataloader(self) -> Any:
            return loader()

        def val_dataloader(self) -> Any:
            return loader(8)

    cli = cli_module.LightningCLI(
        Model,
        Data,
        trainer_defaults={
            "max_epochs": 1,
            "accelerator": "cpu",
            "log_every_n_steps": 1,
            "enable_progress_bar": False,
            "enable_model_summary": False,
        },
        # As a user's command line (or YAML) names it: no save_dir.
        args=[
            "fit",
            "--model.hidden=4",
            "--seed_everything=0",
            f"--trainer.logger=trackline.integrations.lightning.{logger_class(package).__name__}",
            "--trainer.logger.project=cli",
        ],
    )
    run = trackline.open_run(cli.trainer.logger.version)
    assert cli.trainer.log_dir == "."
    assert (tmp_path / "config.yaml").exists()  # LightningCLI's saved config
    assert run.config["hidden"] == 4
    assert run.state == "finished"


@pytest.mark.parametrize("package", PACKAGES)
def test_other_ranks_get_their_packages_dummy_experiment(
    package: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fabric = "lightning.fabric" if package == "lightning.pytorch" else "lightning_fabric"
    dummy = __import__(f"{fabric}.loggers.logger", fromlist=["_DummyExperiment"])
    rank_zero = __import__(f"{fabric}.utilities.rank_zero", fromlist=["rank_zero_only"])
    monkeypatch.setattr(rank_zero.rank_zero_only, "rank", 1)
    logger = logger_class(package)(project="ranks")
    assert type(logger.experiment) is dummy._DummyExperiment
    assert trackline.current_run() is None  # rank 1 started no run
