"""``wandb.sdk.lib``: ``RunDisabled``, what W&B's ``init(mode="disabled")`` returns; trackline
returns a real run in every mode, so nothing is ever one."""


class RunDisabled:
    """Never instantiated here: a type for ``isinstance`` checks."""
