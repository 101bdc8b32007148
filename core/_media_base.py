"""The contract between ``run.log`` and media types (images, audio, tables, ...).

A media object snapshots its data when it is created (on the training thread,
so later changes to the caller's array do not leak in) and is encoded later,
on the media thread, by ``write`` (``_media_worker``).
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

        Runs on the media thread. The description holds ``path`` (relative to the run
        directory) and ``sha256``, except for kind ``"histogram"``, which is stored
        inline as ``{"counts", "edges"}`` with no file.
        """
        raise NotImplementedError

    def frozen(self) -> Media:
        """What is logged: this object as it is now (a table that grows later is copied)."""
        return self


def as_media(value: Any) -> list[Media] | None:
    """``value`` as a list of media objects, or ``None`` if it is not media."""
    if isinstance(value, Media):
        return [value.frozen()]
    if isinstance(value, (list, tuple)) and value:
        if all(isinstance(v, Media) for v in value):
            return [v.frozen() for v in value]
        if all(_is_image_object(v) for v in value):
            from .media import Image

            return [Image(v) for v in value]
        return None
    if _is_image_object(value):
        from .media import Image

        return [Image(value)]
    return None


def _is_image_object(value: Any) -> bool:
    """A matplotlib figure or a PIL image, recognised without importing either."""
    module = type(value).__module__
    return module.startswith("matplotlib.figure") or module.startswith("PIL.")
