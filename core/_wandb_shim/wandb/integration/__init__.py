"""W&B's framework integrations, as trackline records them."""
