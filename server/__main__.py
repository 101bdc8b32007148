"""``python -m trackline.server``: the same as ``trackline server``."""

from __future__ import annotations

from trackline._cli_remote import server_command

if __name__ == "__main__":
    server_command(prog_name="python -m trackline.server")
