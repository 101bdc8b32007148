"""``wandb.sdk``: the names libraries import from it (Lightning's ``WandbLogger``)."""
