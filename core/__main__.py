"""``python -m trackline`` is the ``trackline`` command."""

from ._cli import main

main()
