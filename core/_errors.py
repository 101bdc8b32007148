"""The one base class of the errors trackline raises to its caller."""


class TracklineError(Exception):
    """Base of every error trackline raises on purpose.

    ``except trackline.TracklineError`` catches them all; each also derives from the
    built-in it resembles (``ArtifactError`` is a ``ValueError``, ``RunNotFoundError``
    a ``FileNotFoundError``), so older ``except`` clauses keep working.
    """
