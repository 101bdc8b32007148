"""Child processes that tests start (the ``leftovers`` fixture in conftest kills them)."""

from __future__ import annotations

import subprocess

#: Processes (or bare pids) that a test started.
Leftovers = list[subprocess.Popen[str] | int]
