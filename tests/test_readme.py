"""CI runs exactly the README's test command."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    lines = (ROOT / "README.md").read_text().splitlines()
    return [lines[i + 1] for i, line in enumerate(lines[:12]) if line.strip() == "```bash"][:2]


def test_readme_opens_with_two_commands_and_ci_runs_the_test_one() -> None:
    main_job, tests = readme_commands()
    assert "examples/quickstart.py" in main_job
    assert "pytest" in tests
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert tests in ci
