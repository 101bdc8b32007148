"""Placeholder agent: waits for the run to end. Replaced by the real agent."""

from __future__ import annotations

import sys


def main() -> None:
    sys.stdin.buffer.read()


if __name__ == "__main__":
    main()
