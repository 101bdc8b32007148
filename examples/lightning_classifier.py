"""A Lightning classifier logged with ``TracklineLogger``, next to Lightning's CSV logger.

    python examples/lightning_classifier.py

Offline on CPU in a few seconds, on generated data. With ``TRACKLINE_SERVER`` set,
the run is also shipped to that server. With ``pytorch_lightning`` instead of
``lightning``, use ``PLTracklineLogger``.
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as L
import torch
from trackline.integrations.lightning import TracklineLogger


class Classifier(L.LightningModule):
    def __init__(self, hidden: int = 32, lr: float = 1e-2) -> None:
        super().__init__()
        self.save_hyperparameters()  # -> the run config
        self.net = torch.nn.Sequential(
            torch.nn.Linear(16, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 2)
        )

    def training_step(self, batch: Any, index: int) -> Any:
        x, y = batch
        loss = torch.nn.functional.cross_entropy(self.net(x), y)
        self.log("train/loss", loss)
        return loss

    def validation_step(self, batch: Any, index: int) -> None:
        x, y = batch
        logits = self.net(x)
        self.log("val/loss", torch.nn.functional.cross_entropy(logits, y))
        self.log("val/accuracy", (logits.argmax(dim=1) == y).float().mean())

    def configure_optimizers(self) -> Any:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


def data(n: int, seed: int) -> Any:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 16, generator=g)
    y = (x[:, :4].sum(dim=1) > 0).long()
    dataset = torch.utils.data.TensorDataset(x, y)
    return torch.utils.data.DataLoader(dataset, batch_size=32, shuffle=seed == 0)


def main() -> None:
    torch.manual_seed(0)
    logger = TracklineLogger(project="examples", name="lightning-classifier", log_model=True)
    model = Classifier()
    logger.watch(model, log="gradients", log_freq=20)
    trainer = L.Trainer(
        max_epochs=5,
        accelerator="cpu",
        logger=[logger, L.loggers.CSVLogger("lightning_logs")],
        callbacks=[L.callbacks.ModelCheckpoint(monitor="val/loss", save_top_k=1)],
        log_every_n_steps=5,
        enable_progress_bar=False,
    )
    trainer.fit(model, data(1024, 0), data(256, 1))
    run = logger.experiment
    print(f"run {run.id}: {run.dir}")


if __name__ == "__main__":
    main()
