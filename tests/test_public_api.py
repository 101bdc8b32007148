"""The public surface: exported names, lazy framework imports, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import trackline
from click.testing import CliRunner
from trackline._cli import main

FRAMEWORKS = [
    "torch",
    "tensorflow",
    "keras",
    "transformers",
    "lightning",
    "pytorch_lightning",
    "jax",
    "pandas",
]


def test_exported_names_match_all() -> None:
    public = {
        name
        for name in dir(trackline)
        if not name.startswith("_") and not isinstance(getattr(trackline, name), types.ModuleType)
    } | {"__version__"}
    exported = set(trackline.__all__)
    # plot is a module (trackline.plot.line, as wandb.plot.line)
    assert isinstance(trackline.plot, types.ModuleType)
    assert exported - {"watch", "unwatch", "Api", "ApiError", "plot"} <= public
    assert public - exported == set()


def test_import_trackline_imports_no_framework() -> None:
    code = (
        "import sys, json, trackline\n"
        "run = trackline.init(project='p', mode='disabled')\n"
        f"print(json.dumps([m for m in {FRAMEWORKS!r} if m in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(out.stdout) == []


def test_every_error_trackline_raises_is_a_tracklineerror() -> None:
    from trackline._warn import TracklineStrictError
    from trackline.artifacts import ArtifactError

    errors = [
        (trackline.ApiError, Exception),
        (trackline.RunFinishedError, RuntimeError),
        (trackline.RunNotFoundError, FileNotFoundError),
        (ArtifactError, ValueError),
        (TracklineStrictError, RuntimeError),
    ]
    for error, builtin in errors:
        assert issubclass(error, trackline.TracklineError), error
        assert issubclass(error, builtin), error  # older except clauses keep working
    try:
        trackline.open_run("/nonexistent/trackline-run")
    except trackline.TracklineError as exc:
        assert isinstance(exc, trackline.RunNotFoundError)
    else:
        raise AssertionError("open_run of a missing run did not raise")


def test_watch_is_lazy() -> None:
    code = "import sys, trackline; assert 'torch' not in sys.modules; trackline.watch; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"


def test_cli_runs_and_show(trackline_env: Path) -> None:
    run = trackline.init(project="cli", name="shown", config={"lr": 0.5}, tags=["t1"])
    run.log({"loss": 0.25})
    run.finish()
    runner = CliRunner()
    listing = runner.invoke(main, ["runs", str(trackline_env)])
    assert listing.exit_code == 0, listing.output
    assert (
        run.id in listing.output and "finished" in listing.output and "loss=0.25" in listing.output
    )
    shown = runner.invoke(main, ["show", run.id])
    assert shown.exit_code == 0, shown.output
    assert "shown" in shown.output and "lr" in shown.output and "t1" in shown.output
    as_json = json.loads(runner.invoke(main, ["show", run.id, "--json"]).output)
    assert as_json["config"] == {"lr": 0.5} and as_json["summary"] == {"loss": 0.25}
    missing = runner.invoke(main, ["show", "nope"])
    assert missing.exit_code != 0 and "no run" in missing.output
