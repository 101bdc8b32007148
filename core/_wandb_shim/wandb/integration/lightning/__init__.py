"""``wandb.integration.lightning``: W&B's own Lightning integrations (see ``fabric``)."""
