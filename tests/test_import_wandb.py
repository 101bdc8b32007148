"""`trackline import wandb`: run directories written in the test by W&B itself (offline)
become runs that hold what W&B recorded, the same as `trackline wandb --` records for the
same unmodified script; locally and on a real server after `sync`. Resumed runs join,
cut-off and damaged run files import what is whole, and importing twice changes nothing.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import trackline
from _server import ADMIN_KEY, ServerProcess
from _wandb_server import wandb_offline_env
from click.testing import CliRunner
from trackline._cli import main
from trackline.importers.wandb_files import BLOCK, WandbFileError, scan

pytest.importorskip("wandb.proto.wandb_internal_pb2")
pytest.importorskip("torch")

SCRIPTS = Path(__file__).parent / "fixtures" / "wandb_scripts"


def wandb_env(tmp_path: Path) -> dict[str, str]:
    """W&B offline, everything it writes under ``tmp_path``; trackline's stand-in not in reach."""
    return wandb_offline_env(tmp_path, tmp_path / "wandb-home")


def run_with_wandb(tmp_path: Path, script: str, *args: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "script.py"
    path.write_text(script)
    return subprocess.run(
        [sys.executable, str(path), *args],
        cwd=tmp_path,
        env=wandb_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )


def import_wandb(source: Path, target: Path, *extra: str) -> str:
    result = CliRunner().invoke(
        main, ["import", "wandb", str(source), "--dir", str(target), *extra]
    )
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())  # rich wraps lines at the terminal's width


def shape(run: Any) -> dict[str, Any]:
    """What a run recorded, without its values' noise: keys per step, media, rules."""
    return {
        "config": run.config,
        "rows": [
            (r["_step"], sorted(k for k in r if not k.startswith("_"))) for r in run.history()
        ],
        "media": sorted((m.key, m.kind, m.step, len(m.items)) for m in run.media()),
        "histograms": sorted((h.key, h.step) for h in run.histograms()),
        "rules": sorted((d.name, d.summary, d.step_metric) for d in run.define_metrics),
        "summary": sorted(run.summary),
        "tags": [t for t in run.tags if t != "wandb"],
        "named": (run.project, run.notes, run.group, run.job_type, run.state),
    }


def test_wandbs_own_run_imports_as_the_stand_in_records_it(tmp_path: Path) -> None:
    script = (SCRIPTS / "wandb_everything.py").read_text()
    (tmp_path / "w").mkdir()
    done = run_with_wandb(tmp_path / "w", script)
    assert done.returncode == 0, done.stderr[-3000:]
    (run_dir,) = (tmp_path / "w" / "wandb").glob("offline-run-*")
    said = import_wandb(tmp_path / "w" / "wandb", tmp_path / "tl")
    assert "1 run(s) imported" in said and "36 points" in said, said
    (imported,) = trackline.list_runs(tmp_path / "tl")

    assert (imported.project, imported.name) == ("wandb-everything", run_dir.name.split("-")[-1])
    assert imported.tags == ["wandb", "baseline", "cpu"] and imported.notes == "imported from W&B"
    assert imported.config["optimizer"] == {"name": "sgd", "momentum": 0.9}
    rows = imported.history()
    assert [r["_step"] for r in rows] == list(range(15))
    assert [r["epoch"] for r in rows if "epoch" in r] == [0, 1, 2]
    assert [r["phase"] for r in rows if "phase" in r] == ["epoch-0", "epoch-1", "epoch-2"]
    assert imported.summary["val/loss"] == pytest.approx(1 / 3)  # define_metric min
    assert imported.summary["final_note"] == "done" and imported.summary["params"] == 49
    assert imported.summary["_alerts"][0]["title"] == "Training done"
    assert [h.step for h in imported.histograms("gradients/0.weight")] == [1, 3, 6, 8, 11, 13]
    images = [m for m in imported.media() if m.key == "sample"]
    assert [m.items[0]["caption"] for m in images] == ["e0", "e1", "e2"]
    for media in images:  # the very bytes W&B stored
        stored = (imported.path / media.items[0]["path"]).read_bytes()
        assert any(
            hashlib.sha256(p.read_bytes()).digest() == hashlib.sha256(stored).digest()
            for p in (run_dir / "files" / "media" / "images").glob("*.png")
        )
    assert "epoch 1 done" in imported.console()
    assert imported.environment is not None and imported.environment.cpu_count > 0
    assert any(name.endswith("notes.txt") for name in imported.files)

    # The same script through both of trackline's routes records the same shape: unmodified
    # under `trackline wandb --`, and with its import changed to `import trackline as wandb`.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACKLINE_", "WANDB_"))}
    routes = {
        "shim": (script, ["-m", "trackline", "wandb", "--", sys.executable, "script.py"]),
        "direct": (script.replace("import wandb\n", "import trackline as wandb\n"), ["script.py"]),
    }
    for route, (source, argv) in routes.items():
        assert source.count("import trackline as wandb") == (route == "direct")
        work = tmp_path / route
        work.mkdir()
        (work / "script.py").write_text(source)
        done = subprocess.run(
            [sys.executable, *argv],
            cwd=work,
            env={**env, "TRACKLINE_DIR": str(work / "tl"), "TRACKLINE_MODE": "offline"},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, f"{route}: {done.stderr[-3000:]}"
        (recorded,) = trackline.list_runs(work / "tl")
        assert shape(recorded) == shape(imported), route
        for a, b in zip(recorded.history(), imported.history(), strict=True):
            assert {k: v for k, v in a.items() if k != "_time"} == pytest.approx(
                {k: v for k, v in b.items() if k != "_time"}
            )

    # Again: nothing changes. Then to a server, point for point.
    before = {p: p.read_bytes() for p in (tmp_path / "tl").rglob("*.tlog")}
    assert "1 already imported" in import_wandb(tmp_path / "w", tmp_path / "tl")
    assert {p: p.read_bytes() for p in (tmp_path / "tl").rglob("*.tlog")} == before
    server = ServerProcess(tmp_path / "server").start()
    try:  # imported again straight to a server: nothing new imported, all uploaded
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKLINE_")}
        command = [sys.executable, "-m", "trackline", "import", "wandb", str(tmp_path / "w")]
        uploaded = subprocess.run(
            [*command, "--dir", str(tmp_path / "tl"), "--server", server.url, "--key", ADMIN_KEY],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        said = " ".join(uploaded.stderr.split())
        assert uploaded.returncode == 0, uploaded.stderr[-2000:]
        assert "1 already imported" in said and "1 run(s) up to date" in said, said
        with trackline.Api(server.url, ADMIN_KEY) as api:
            (remote,) = api.runs("admin/wandb-everything")
            assert remote.state == "finished" and remote.config == imported.config
            assert [r["train/loss"] for r in remote.history() if "train/loss" in r] == [
                r["train/loss"] for r in rows if "train/loss" in r
            ]
            assert remote.summary["final_note"] == "done"
    finally:
        server.stop()


RESUMED = textwrap.dedent(
    """
    import os, sys, wandb
    part = int(sys.argv[1])
    run = wandb.init(project="resumed", id="fixedid1", resume="allow", config={"part": part})
    for i in range(5):
        row = {"loss": float(part * 10 + i)}
        if i == 2:
            row["blob"] = "y" * 70000  # a record over two 32 KiB blocks
        wandb.log(row)
    if part == 3:
        os._exit(0)  # killed: no exit record
    wandb.finish(exit_code=part - 1)
    """
)


def test_resumed_parts_join_and_a_cut_off_run_is_crashed(tmp_path: Path) -> None:
    for part in ("1", "2"):
        done = run_with_wandb(tmp_path, RESUMED, part)
        assert done.returncode == 0, done.stderr[-3000:]
    said = import_wandb(tmp_path / "wandb", tmp_path / "tl")
    assert "1 run(s) imported (12 points)" in said and "steps moved by 5" in said, said
    (run,) = trackline.list_runs(tmp_path / "tl")
    rows = run.history()
    assert [(r["_step"], r["loss"]) for r in rows] == [
        (i, 10 * (1 + i // 5) + i % 5) for i in range(10)
    ]
    assert [len(r["blob"]) for r in rows if "blob" in r] == [70000, 70000]
    assert run.config == {"part": 2} and (run.state, run.exit_code) == ("failed", 1)

    killed = tmp_path / "killed"
    killed.mkdir()
    done = run_with_wandb(killed, RESUMED.replace("fixedid1", "fixedid2"), "3")
    assert done.returncode == 0, done.stderr[-3000:]
    import_wandb(killed / "wandb", tmp_path / "tl")
    (cut,) = [r for r in trackline.list_runs(tmp_path / "tl") if r.name == "fixedid2"]
    assert cut.state == "crashed" and "no exit record" in (cut.reason or "")
    # What W&B wrote before the kill (it loses its last rows: they were in memory) is all there.
    losses = [r["loss"] for r in cut.history()]
    assert losses == [30, 31, 32, 33, 34][: len(losses)]


def test_torn_and_damaged_run_files_import_what_is_whole(tmp_path: Path) -> None:
    done = run_with_wandb(tmp_path, RESUMED, "1")
    assert done.returncode == 0, done.stderr[-3000:]
    (source,) = (tmp_path / "wandb").glob("offline-run-*/*.wandb")
    data = source.read_bytes()
    assert len(data) > 2 * BLOCK  # the blob spans blocks
    whole = list(scan(data))

    torn = tmp_path / "torn" / "offline-run-x"
    (torn / "files").mkdir(parents=True)
    (torn / "run-x.wandb").write_bytes(data[: len(data) - 5])
    said = import_wandb(tmp_path / "torn", tmp_path / "tl")
    assert "torn record" in said, said
    (run,) = trackline.list_runs(tmp_path / "tl")
    assert run.state == "crashed" and len(run.history()) == 5  # the exit record was torn

    damaged = bytearray(data)
    damaged[BLOCK + 100] ^= 0xFF  # inside the second block
    records = list(scan(bytes(damaged)))
    assert 0 < len(whole) - len(records) <= 3  # that block's records, no more

    for bad, message in ((b"", "too short"), (b"PK\x03\x04 not wandb", "no :W&B header")):
        with pytest.raises(WandbFileError, match=message):
            list(scan(bad))


def test_bad_input_is_a_clear_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(main, ["import", "wandb", str(empty)])
    assert result.exit_code == 0 and "no W&B run files" in result.output
    missing = CliRunner().invoke(main, ["import", "wandb", str(tmp_path / "nope")])
    assert missing.exit_code == 2
    bad = CliRunner().invoke(main, ["import", "wandb", str(empty), "--project", "a b"])
    assert bad.exit_code == 2 and "--project" in bad.output
    (empty / "run-x.wandb").write_bytes(b"not a wandb file at all")
    skipped = CliRunner().invoke(
        main, ["import", "wandb", str(empty), "--dir", str(tmp_path / "t")]
    )
    said = " ".join(skipped.output.split())
    assert skipped.exit_code == 0 and "not a W&B run file (no :W&B header)" in said, said


def png(color: tuple[int, int, int]) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buffer, format="PNG")
    return buffer.getvalue()


def wandb_project() -> list[dict[str, Any]]:
    """Two runs as W&B's server holds them: rows as logged (nested, media, text)."""
    image = png((200, 30, 30))
    history = []
    for step in range(30):
        row: dict[str, Any] = {
            "_step": step,
            "_timestamp": 1_796_000_000.0 + step,
            "_runtime": float(step),
            "loss": 1.0 / (step + 1),
            "train": {"lr": 0.1},
            "phase": "warmup" if step < 5 else "main",
        }
        if step == 10:
            row["sample"] = {
                "_type": "image-file",
                "path": "media/images/sample_10_ab12.png",
                "width": 8,
                "height": 8,
                "format": "png",
                "size": len(image),
                "sha256": hashlib.sha256(image).hexdigest(),
                "caption": "red",
            }
        if step == 20:
            row["weights"] = {"_type": "histogram", "values": [1, 3, 2], "bins": [0.0, 1, 2, 3]}
        history.append(row)
    system = [
        {
            "system.cpu": 12.5,
            "system.proc.memory.rssMB": 100.0,
            "system.gpu.0.gpu": 50.0,
            "_timestamp": 1_796_000_000.5 + i,
            "_runtime": 0.5 + i,
        }
        for i in range(3)
    ]
    first = {
        "id": "abc123",
        "name": "bright-sun-1",
        "state": "finished",
        "tags": ["baseline"],
        "notes": "from the cloud",
        "group": "g1",
        "job_type": "train",
        "commit": "deadbeef",
        "config": {"lr": 0.1, "layers": [4, 8], "optimizer": {"name": "adam"}},
        "summary": {"loss": 1.0 / 30, "best_acc": 0.9, "_step": 29, "_wandb": {"runtime": 30}},
        "history": history,
        "system": system,
        "files": {
            "output.log": b"epoch 0 done\nepoch 1 done\n",
            "notes.txt": b"kept\n",
            "requirements.txt": b"torch==2.13.0\n",
            "wandb-metadata.json": b"{}",
            "media/images/sample_10_ab12.png": image,
        },
    }
    second = {
        **first,
        "id": "def456",
        "name": "dark-moon-2",
        "state": "crashed",
        "history": history[:3],
        "system": [],
        "files": {},
        "summary": {},
    }
    return [first, second]


def test_a_project_on_wandbs_server_imports_through_its_public_api(tmp_path: Path) -> None:
    from _wandb_server import WandbServer

    with WandbServer("acme", "proj", wandb_project()) as server:
        env = wandb_env(tmp_path)
        env.pop("WANDB_MODE")
        env.update(WANDB_BASE_URL=server.url, WANDB_API_KEY="a" * 40)
        command = [sys.executable, "-m", "trackline", "import", "wandb", "--dir", "tl"]
        done = subprocess.run(
            [*command, "--from-server", "acme/proj"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        said = " ".join(done.stderr.split())
        assert done.returncode == 0, done.stderr[-3000:]
        assert "2 run(s) imported (99 points)" in said, said
        assert {"Runs", "Run", "HistoryPage", "RunFullHistory", "RunFiles"} <= set(
            server.operations
        )
        runs = {r.name: r for r in trackline.list_runs(tmp_path / "tl")}
        run = runs["bright-sun-1"]
        assert (run.project, run.state, run.group, run.job_type) == (
            "proj",
            "finished",
            "g1",
            "train",
        )
        assert run.tags == ["wandb", "baseline"] and run.notes == "from the cloud"
        assert run.config == {"lr": 0.1, "layers": [4, 8], "optimizer": {"name": "adam"}}
        rows = run.history()
        assert [r["_step"] for r in rows] == list(range(30))
        assert rows[3]["loss"] == pytest.approx(0.25) and rows[3]["train/lr"] == 0.1
        assert rows[0]["phase"] == "warmup" and rows[-1]["phase"] == "main"
        assert rows[0]["_time"] == pytest.approx(1_796_000_000.0)
        (image,) = [m for m in run.media() if m.key == "sample"]
        assert image.step == 10 and image.items[0]["caption"] == "red"
        stored = (run.path / image.items[0]["path"]).read_bytes()
        assert stored == wandb_project()[0]["files"]["media/images/sample_10_ab12.png"]
        (histogram,) = [m for m in run.media() if m.key == "weights"]
        assert histogram.items[0]["counts"] == [1, 3, 2]
        assert run.summary["best_acc"] == 0.9 and "_wandb" not in run.summary
        assert run.summary["loss"] == pytest.approx(1 / 30)
        assert run.console() == ["epoch 0 done", "epoch 1 done"]
        assert sorted(run.files) == ["notes.txt", "requirements.txt"]
        assert run.git is not None and run.git.commit == "deadbeef"
        system = run.system()
        assert len(system) == 3 and system[0]["proc/cpu_percent"] == 12.5
        assert system[0]["proc/rss_bytes"] == 100 * 1024 * 1024
        assert system[0]["gpu/0/util_percent"] == 50.0
        crashed = runs["dark-moon-2"]
        assert crashed.state == "crashed" and len(crashed.history()) == 3

        again = subprocess.run(
            [*command, "--from-server", "acme/proj"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert "2 already imported" in " ".join(again.stderr.split()), again.stderr
        missing = subprocess.run(
            [*command, "--from-server", "acme/nope"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert missing.returncode != 0, missing.stderr[-2000:]
        assert "W&B: Could not find project nope" in missing.stderr, missing.stderr[-2000:]
