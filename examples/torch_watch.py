"""A plain torch training loop with gradient and parameter histograms (``trackline.watch``).

    python examples/torch_watch.py

Offline on CPU in a few seconds, on generated data. With ``TRACKLINE_SERVER`` set,
the run is also shipped to that server.
"""

from __future__ import annotations

import torch
import trackline


def main() -> None:
    torch.manual_seed(0)
    x = torch.randn(512, 16)
    y = (x[:, :4].sum(dim=1) > 0).long()  # two classes, decided by the first four features
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)

    run = trackline.init(
        project="examples", name="torch-watch", config={"lr": 1e-2, "batch_size": 32}
    )
    trackline.watch(model, log="all", log_freq=10)  # histograms every 10th backward pass
    step = 0
    for epoch in range(5):
        for batch in torch.randperm(len(x)).split(32):
            loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            run.log({"train/loss": loss, "epoch": epoch})
            step += 1
        with torch.no_grad():
            accuracy = (model(x).argmax(dim=1) == y).float().mean()
        run.log({"eval/accuracy": accuracy})
    trackline.unwatch(model)
    run.finish()
    print(f"run {run.id}: {run.dir}")


if __name__ == "__main__":
    main()
