"""The contract between ``run.log`` and media types (images, audio, tables, ...).

A media object snapshots its data when it is created (on the training thread,
so later changes to the caller's array do not leak in) and is encoded later,
on the writer thread, by ``write``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class Media:
    """Base of every value type that becomes a file in the run directory."""

    #: The kind recorded in the media record, e.g. ``"image"``.
    kind = "media"

    def write(self, media_dir: Path) -> dict[str, Any]:
        """Encode into ``media_dir`` (named by content hash); return this item's description.

        Runs on the writer thread. The description holds at least ``path`` (relative to
        the run directory) and ``sha256``.
        """
        raise NotImplementedError


def as_media(value: Any) -> list[Media] | None:
    """``value`` as a list of media objects, or ``None`` if it is not media."""
    if isinstance(value, Media):
        return [value]
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, Media) for v in value):
        return list(value)
    module = type(value).__module__
    if module.startswith("matplotlib.figure") or module.startswith("PIL."):
        from .media import Image  # type: ignore[attr-defined]

        return [Image(value)]
    return None
