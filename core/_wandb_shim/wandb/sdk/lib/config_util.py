"""``wandb.sdk.lib.config_util``: the error W&B raises for a config it cannot take."""


class ConfigError(Exception):
    """Never raised here: trackline's config takes any change (``allow_val_change``)."""
