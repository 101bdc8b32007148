"""A tiny BERT trained by transformers' ``Trainer``, logged with ``TracklineCallback``.

    python examples/hf_trainer_tiny.py

Offline on CPU in about ten seconds: the model is built from a config (no
download, no tokenizer) and trained on random token ids. With ``TRACKLINE_SERVER``
set, the run is also shipped to that server. ``TRACKLINE_WATCH=gradients`` adds
gradient histograms; ``TRACKLINE_LOG_MODEL=checkpoint`` saves the checkpoints.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from trackline.integrations.transformers import TracklineCallback
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    Trainer,
    TrainingArguments,
)


class Tokens(torch.utils.data.Dataset):  # type: ignore[misc]
    """Random token ids; the label says whether the first token is in the upper half."""

    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(0, 100, (n, 16), generator=g)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, Any]:
        ids = self.ids[i]
        return {
            "input_ids": ids,
            "attention_mask": torch.ones_like(ids),
            "labels": int(ids[0] >= 50),
        }


def main() -> None:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
    )
    model = BertForSequenceClassification(config)
    callback = TracklineCallback(project="examples", name="hf-trainer-tiny")
    with tempfile.TemporaryDirectory() as output_dir:
        args = TrainingArguments(
            output_dir=output_dir,
            num_train_epochs=2,
            per_device_train_batch_size=16,
            learning_rate=1e-3,
            logging_steps=5,
            eval_strategy="epoch",
            save_strategy="epoch",
            report_to="none",  # the callback does the logging
            use_cpu=True,
            disable_tqdm=True,
        )
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=Tokens(256, 0),
            eval_dataset=Tokens(64, 1),
            callbacks=[callback],
        )
        trainer.train()
    run = callback.run
    assert run is not None
    print(f"run {run.id}: {run.dir}")


if __name__ == "__main__":
    main()
