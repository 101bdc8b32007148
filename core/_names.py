"""Run ids and readable run names."""

from __future__ import annotations

import secrets

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

_ADJECTIVES = (
    "amber",
    "bold",
    "brisk",
    "calm",
    "clever",
    "crisp",
    "dapper",
    "eager",
    "fancy",
    "gentle",
    "glad",
    "golden",
    "happy",
    "hazy",
    "jolly",
    "keen",
    "lively",
    "lucky",
    "mellow",
    "misty",
    "nimble",
    "proud",
    "quiet",
    "rapid",
    "royal",
    "rustic",
    "serene",
    "shiny",
    "silent",
    "sleek",
    "snowy",
    "solar",
    "steady",
    "sunny",
    "swift",
    "tidy",
    "vivid",
    "warm",
    "wise",
    "zesty",
)
_NOUNS = (
    "aurora",
    "badger",
    "breeze",
    "brook",
    "canyon",
    "cedar",
    "comet",
    "coral",
    "dawn",
    "delta",
    "dune",
    "falcon",
    "fern",
    "fjord",
    "forest",
    "galaxy",
    "glacier",
    "harbor",
    "heron",
    "island",
    "lagoon",
    "lotus",
    "maple",
    "meadow",
    "mesa",
    "nebula",
    "oasis",
    "orbit",
    "otter",
    "pine",
    "prairie",
    "quasar",
    "river",
    "sparrow",
    "spruce",
    "summit",
    "thunder",
    "tundra",
    "valley",
    "willow",
)


def new_run_id(length: int = 8) -> str:
    """A short random id: 8 base-36 characters (about 41 bits)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def new_run_name() -> str:
    """A readable name such as ``brisk-river-42``."""
    return f"{secrets.choice(_ADJECTIVES)}-{secrets.choice(_NOUNS)}-{secrets.randbelow(100)}"


def valid_run_id(run_id: str) -> bool:
    return 0 < len(run_id) <= 64 and all(c in _ALPHABET or c in _UPPER or c in "-_" for c in run_id)
