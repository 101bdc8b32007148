"""Names: run ids, readable run names, and the rules the SDK and the server share.

The server imports these rules, so that a name ``init`` accepts offline is one
the server takes later: a run whose project the server refuses could never be
uploaded.
"""

from __future__ import annotations

import re
import secrets

#: Run ids: letters, digits, '-' and '_' (they go into URLs and directory names).
RUN_ID = r"^[A-Za-z0-9_-]{1,64}$"
#: Users and teams.
ENTITY = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
#: A project's own name, without its entity.
PROJECT = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
PROJECT_RULE = (
    "a project is NAME or ENTITY/NAME, where NAME is 1-128 and ENTITY 1-64 letters, "
    "digits, '.', '_' or '-', each starting with a letter or digit"
)

_RUN_ID = re.compile(RUN_ID)
_ENTITY = re.compile(ENTITY)
_PROJECT = re.compile(PROJECT)

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"

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
    return isinstance(run_id, str) and _RUN_ID.fullmatch(run_id) is not None


def valid_entity(name: str) -> bool:
    """A user or team name."""
    return isinstance(name, str) and _ENTITY.fullmatch(name) is not None


def project_problem(project: object) -> str | None:
    """What is wrong with ``project`` (``"name"`` or ``"entity/name"``); ``None`` if nothing."""
    if isinstance(project, str):
        entity, slash, name = project.rpartition("/")
        if _PROJECT.fullmatch(name) and (not slash or valid_entity(entity)):
            return None
    return f"project name {project!r:.200} is invalid: {PROJECT_RULE}"


def check_project(project: str) -> str:
    """``project`` if valid; else ``ValueError`` naming the rule."""
    problem = project_problem(project)
    if problem is not None:
        raise ValueError(problem)
    return project
