"""Sessions: tests, lint, bench, chaos, deploy, and one per integration.

``nox -s tests`` is what CI runs (through the README's test command); the
integration sessions re-run one adapter's tests against other framework releases:
two each of Keras, Lightning and transformers, and one torch (2.13.0, the CPU build
this machine installs from disk: other torch releases pull multi-GB CUDA builds).
"""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"
CONSTRAINTS = ("-c", "constraints.txt")
TORCH = "torch==2.13.0"  # the CPU build on this machine's disk; an unpinned torch pulls CUDA


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The whole test suite."""
    session.install(TORCH, *CONSTRAINTS, "-e", ".[dev]")
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff (lint + format) and mypy --strict on the core."""
    session.install(*CONSTRAINTS, "-e", ".[server]", "ruff", "mypy", "pandas-stubs")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy", "core", "server", "integrations")


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks against W&B, MLflow and TensorBoard, measured in the same run (`-- --quick`)."""
    session.install(TORCH, *CONSTRAINTS, "-e", ".[dev,bench]")
    for script in (
        "core",
        "media",
        "server",
        "live",
        "wide",
        "integrations",
        "artifacts",
        "dashboard",
    ):
        session.run("python", f"bench/bench_{script}.py", *session.posargs)


@nox.session(python=PYTHON)
def chaos(session: nox.Session) -> None:
    """Fault scenarios end to end on SQLite and PostgreSQL, as a table (`-- --quick`: CI's form)."""
    session.install(*CONSTRAINTS, "-e", ".[server]", "pytest")
    session.run("python", "tools/chaos.py", *session.posargs)


@nox.session(python=PYTHON)
def deploy(session: nox.Session) -> None:
    """deploy/'s nginx config in front of two servers on PostgreSQL + S3, each killed in turn,
    at 10x the test suite's size (nginx and PostgreSQL from Debian: apt-get install nginx
    postgresql); prints the table."""
    session.install(*CONSTRAINTS, "-e", ".[server,s3,dev]")
    session.env["TRACKLINE_DEPLOY_SCALE"] = "10"
    session.run(
        "pytest",
        "-s",
        "tests/test_deploy.py",
        "tests/test_server_storage.py",
        "-k",
        "deploy or several_servers",
        *session.posargs,
    )


@nox.session(python=PYTHON)
@nox.parametrize("keras", ["3.15.1", "3.12.0"])
def keras(session: nox.Session, keras: str) -> None:
    session.install(
        TORCH, "tensorflow-cpu==2.21.0", f"keras=={keras}", "-e", ".", "pytest", "pytest-timeout"
    )
    session.run("pytest", "tests/test_keras.py", *session.posargs)


@nox.session(python=PYTHON)
@nox.parametrize("lightning", ["2.6.6", "2.5.5"])
def lightning(session: nox.Session, lightning: str) -> None:
    session.install(
        TORCH,
        f"lightning=={lightning}",
        f"pytorch-lightning=={lightning}",
        "-e",
        ".",
        "pytest",
        "pytest-timeout",
    )
    session.run("pytest", "tests/test_lightning.py", *session.posargs)


@nox.session(python=PYTHON)
@nox.parametrize("transformers", ["5.24.0", "4.57.1"])
def transformers(session: nox.Session, transformers: str) -> None:
    session.install(
        TORCH,
        f"transformers=={transformers}",
        "accelerate==1.15.0",
        "-e",
        ".",
        "pytest",
        "pytest-timeout",
    )
    session.run("pytest", "tests/test_transformers.py", *session.posargs)


@nox.session(python=PYTHON)
@nox.parametrize("torch", ["2.13.0"])
def torch(session: nox.Session, torch: str) -> None:
    session.install(f"torch=={torch}", "-e", ".", "pytest", "pytest-timeout", "numpy")
    session.run("pytest", "tests/test_torch_watch.py", *session.posargs)
