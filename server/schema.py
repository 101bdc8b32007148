"""The database schema (SQLAlchemy Core tables), the same on SQLite and PostgreSQL.

Changing a table here needs a migration in ``migrations.py`` (and ``SCHEMA_VERSION``
raised): a fresh database is created from these definitions and stamped with the
latest version, an existing one is brought up to date by the migrations.

Metric history is columnar: a run has one ``series`` per (kind, key), and a series
has ``chunks`` of packed arrays (steps, values, times), appended per ingest batch;
there is never a row per point. Structured values (config, summary, git, ...) are
msgpack blobs: exact for NaN, infinities and big integers, and filtered in Python.
"""

from __future__ import annotations

import sqlalchemy as sa

#: The version a database created from these tables is at.
SCHEMA_VERSION = 19

metadata = sa.MetaData()

_float: sa.Double[float] = sa.Double()

schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("applied_at", _float, nullable=False),
)

#: Users and teams share one namespace: an entity owns projects.
entities = sa.Table(
    "entities",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("kind", sa.String(8), nullable=False),  # "user" | "team"
    sa.Column("is_admin", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", _float, nullable=False),
    # When an admin deactivated the user (version 9): its keys are refused while set.
    sa.Column("deactivated_at", _float, nullable=True),
)

members = sa.Table(
    "members",
    metadata,
    sa.Column("team_id", sa.Integer, sa.ForeignKey("entities.id"), primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("entities.id"), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False, default="member"),  # "admin" | "member"
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("entities.id"), nullable=False),
    # sha256 of the key: keys are long random strings, so a plain hash is enough.
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("created_at", _float, nullable=False),
)

projects = sa.Table(
    "projects",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("entity_id", sa.Integer, sa.ForeignKey("entities.id"), nullable=False),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("public", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", _float, nullable=False),
    sa.UniqueConstraint("entity_id", "name", name="uq_projects_entity_name"),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(64), nullable=False, unique=True),
    # Null until the run's start record arrives (a system stream may come first).
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=True),
    sa.Column("creator_id", sa.Integer, sa.ForeignKey("entities.id"), nullable=False),
    sa.Column("name", sa.Text, nullable=False, default=""),
    sa.Column("group_name", sa.Text, nullable=True),
    sa.Column("job_type", sa.Text, nullable=True),
    sa.Column("notes", sa.Text, nullable=True),
    # "running" or a final state as the records say; the heartbeat verdict is applied on read.
    sa.Column("state", sa.String(16), nullable=False, default="running"),
    sa.Column("host", sa.Text, nullable=False, default=""),
    sa.Column("user_name", sa.Text, nullable=False, default=""),
    sa.Column("pid", sa.BigInteger, nullable=False, default=0),
    sa.Column("start_time", _float, nullable=True),
    sa.Column("end_time", _float, nullable=True),
    sa.Column("exit_code", sa.BigInteger, nullable=True),
    sa.Column("starts", sa.Integer, nullable=False, default=0),
    sa.Column("last_step", sa.BigInteger, nullable=False, default=-1),
    sa.Column("created_at", _float, nullable=False),
    sa.Column("updated_at", _float, nullable=False),
    # Server time of the latest heartbeat or live upload, or the latest record time.
    sa.Column("last_seen", _float, nullable=False),
    # msgpack: tags, config, summary, summarizer state, git, environment, finishes, ...
    sa.Column("meta", sa.LargeBinary, nullable=False),
    sa.Column("config", sa.LargeBinary, nullable=False),
    sa.Column("summary", sa.LargeBinary, nullable=False),
    sa.Column("state_blob", sa.LargeBinary, nullable=False),
    # In the trash since (server time), by whom; purged TRASH_DAYS later (schema version 10).
    sa.Column("deleted_at", _float, nullable=True),
    sa.Column("deleted_by", sa.Integer, nullable=True),
    # A fork's parent (its run id: the parent may arrive later) and the last step it
    # inherits from it, read from the parent's chunks by reference (schema version 13).
    sa.Column("parent_run_id", sa.String(64), nullable=True),
    sa.Column("fork_step", sa.BigInteger, nullable=True),
)
sa.Index("ix_runs_project", runs.c.project_id)
#: A run's forks (version 13).
RUNS_BY_PARENT = sa.Index("ix_runs_parent", runs.c.parent_run_id)

streams = sa.Table(
    "streams",
    metadata,
    sa.Column("run_pk", sa.Integer, sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("name", sa.String(16), primary_key=True),
    sa.Column("committed", sa.BigInteger, nullable=False, default=0),
    # What the writer's log begins with (version 17): a digest of its header and first
    # frame, sent with each range; a range of another log under the same name is refused.
    # Null for streams begun before, or by a client that does not send it.
    sa.Column("head", sa.String(64), nullable=True),
)

#: kind: "m" metric, "r" metric rows (one point per Metrics record), "s" system
#: statistic, "S" system sample rows. Steps of system series are sample indexes.
series = sa.Table(
    "series",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_pk", sa.Integer, sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("kind", sa.String(1), nullable=False),
    sa.Column("key", sa.Text, nullable=False),
    sa.Column("count", sa.BigInteger, nullable=False, default=0),
    # The next chunk's seq: chunks written so far (compacting leaves gaps in the seqs).
    sa.Column("chunks", sa.Integer, nullable=False, default=0),
    # Points in the last chunk.
    sa.Column("last_n", sa.Integer, nullable=False, default=0),
    sa.Column("step_min", sa.BigInteger, nullable=True),
    sa.Column("step_max", sa.BigInteger, nullable=True),
    # True while every chunk holds strictly increasing steps above the previous chunk's.
    sa.Column("ordered", sa.Boolean, nullable=False, default=True),
    # The tail (version 16): the trailing small chunks, from seq ``tail_seq`` on, to be
    # compacted into one (``series.SeriesWriter``): how many, and their points.
    sa.Column("tail", sa.Integer, nullable=False, default=0, server_default="0"),
    sa.Column("tail_seq", sa.Integer, nullable=False, default=0, server_default="0"),
    sa.Column("tail_n", sa.Integer, nullable=False, default=0, server_default="0"),
    # The tail's fresh chunks (version 19): its last, uncompacted ones, from ``fresh_seq``
    # on; the tail's chunks before them were compacted from fresh ones (``serieswrite._due``).
    sa.Column("fresh", sa.Integer, nullable=False, default=0, server_default="0"),
    sa.Column("fresh_seq", sa.Integer, nullable=False, default=0, server_default="0"),
    sa.Column("fresh_n", sa.Integer, nullable=False, default=0, server_default="0"),
    sa.UniqueConstraint("run_pk", "kind", "key", name="uq_series_run_kind_key"),
)

chunks = sa.Table(
    "chunks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("series_id", sa.Integer, sa.ForeignKey("series.id"), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("n", sa.Integer, nullable=False),
    sa.Column("step_min", sa.BigInteger, nullable=False),
    sa.Column("step_max", sa.BigInteger, nullable=False),
    sa.Column("v_min", _float, nullable=True),
    sa.Column("v_max", _float, nullable=True),
    # "f" float64, "i" int64, "x" float64 + int flags, "o" msgpack list (text, mixed),
    # "n" no values (the rows series)
    sa.Column("dtype", sa.String(1), nullable=False),
    # Steps are step_min, step_min + 1, ... and not stored.
    sa.Column("dense", sa.Boolean, nullable=False),
    sa.Column("sorted", sa.Boolean, nullable=False),
    # Per block of 64 points: steps, min, max, sum, counts (chunks.BLOCK_DTYPE); what
    # downsampling reads instead of the points. Empty for text and unsorted chunks.
    sa.Column("blocks", sa.LargeBinary, nullable=False),
    # Column order matters on SQLite: reading a column does not walk the pages of later ones.
    sa.Column("steps", sa.LargeBinary, nullable=False),
    sa.Column("vals", sa.LargeBinary, nullable=False),
    sa.Column("flags", sa.LargeBinary, nullable=False),
    sa.Column("times", sa.LargeBinary, nullable=False),
    # How many rewinds of the run came before this chunk's points (version 13): a rewind
    # to step N hides the points above N of the chunks of earlier epochs.
    sa.Column("epoch", sa.Integer, nullable=False, default=0, server_default="0"),
    sa.UniqueConstraint("series_id", "seq", name="uq_chunks_series_seq"),
)

#: Runs deleted for good: an agent still holding one is told so (410) instead of
#: uploading it again as a new run. Since schema 12.
purged_runs = sa.Table(
    "purged_runs",
    metadata,
    sa.Column("run_id", sa.String(128), primary_key=True),
    sa.Column("creator_id", sa.Integer, nullable=False),
    sa.Column("purged_at", sa.Float, nullable=False),
)

#: Per chunk with block summaries: the time of each block's first and last point
#: (float64 pairs), so that charts over wall time read these instead of the points.
#: Written since schema 12, and since 19 not for the chunks of a series' tail (small,
#: soon compacted: ``serieswrite._Group``); a chunk without a row has its block times
#: taken from its points' times (``series.read_blocks``).
block_times = sa.Table(
    "block_times",
    metadata,
    sa.Column("series_id", sa.Integer, sa.ForeignKey("series.id"), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("times", sa.LargeBinary, nullable=False),
)


def _lz4(table: str, columns: tuple[str, ...]) -> sa.DDL:
    alter = ", ".join(f"ALTER COLUMN {c} SET COMPRESSION lz4" for c in columns)
    return sa.DDL(  # type: ignore[no-untyped-call]
        f"""DO $$ BEGIN EXECUTE 'ALTER TABLE {table} {alter}';
EXCEPTION WHEN OTHERS THEN RAISE NOTICE USING MESSAGE = 'trackline: {table} keeps pglz: ' || SQLERRM;
END $$"""
    )


#: PostgreSQL: chunk points and block times compressed with lz4 instead of pglz, the
#: default. pglz took about half of a 1 M-point run's ingest (0.55 of 1.15 s) on its float
#: arrays; lz4 takes a tenth of that and decompresses faster. Values stored before keep
#: pglz (both read alike). Without lz4 (a build without it, PostgreSQL < 14) the columns
#: keep pglz (version 15).
POINTS_LZ4 = [_lz4("chunks", ("steps", "vals", "flags", "times")), _lz4("block_times", ("times",))]
sa.event.listen(chunks, "after_create", POINTS_LZ4[0].execute_if(dialect="postgresql"))
sa.event.listen(block_times, "after_create", POINTS_LZ4[1].execute_if(dialect="postgresql"))

#: PostgreSQL: block summaries stored uncompressed (``STORAGE EXTERNAL``). They are
#: floats that pglz shrinks by a third at best, and a chart reads all of them: the
#: decompression cost more than the bytes saved (version 3).
BLOCKS_UNCOMPRESSED = sa.DDL(  # type: ignore[no-untyped-call]
    "ALTER TABLE chunks ALTER COLUMN blocks SET STORAGE EXTERNAL"
)
sa.event.listen(chunks, "after_create", BLOCKS_UNCOMPRESSED.execute_if(dialect="postgresql"))

#: PostgreSQL: a chunk row is kept whole in the table up to 8 KB (one page) instead of
#: 2 KB, the default past which its largest values go to the TOAST table. A wide row's
#: chunks (a few hundred points per key: 2-5 KB of values and times) were each written
#: twice over, to the table and to TOAST with its index: about a tenth of their ingest
#: (version 18). Big chunks (compacted ones, thousands of points) are toasted as before.
CHUNKS_INLINE = sa.DDL(  # type: ignore[no-untyped-call]
    "ALTER TABLE chunks SET (toast_tuple_target = 8160)"
)
sa.event.listen(chunks, "after_create", CHUNKS_INLINE.execute_if(dialect="postgresql"))

#: PostgreSQL: series pages half full, so that updating a row's counters (every ingest
#: request, for every series it writes) puts the new version on the same page: a HOT
#: update, with no new entry in either index, and the old version pruned in place. Full
#: pages moved each version elsewhere and indexed it twice: a live 20,000-key run's
#: counters took 0.34 s per request, rising as the table bloated (version 19).
SERIES_ROOM = sa.DDL("ALTER TABLE series SET (fillfactor = 50)")  # type: ignore[no-untyped-call]
sa.event.listen(series, "after_create", SERIES_ROOM.execute_if(dialect="postgresql"))


histograms = sa.Table(
    "histograms",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_pk", sa.Integer, sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("key", sa.Text, nullable=False),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("time", _float, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),  # msgpack [edges, counts]
    # Rewinds before it in the run's log, as chunks.epoch: a later rewind to step N hides
    # it when its step is above N (schema version 14).
    sa.Column("epoch", sa.Integer, nullable=False, default=0, server_default="0"),
)
sa.Index("ix_histograms_run_key", histograms.c.run_pk, histograms.c.key)

media = sa.Table(
    "media",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_pk", sa.Integer, sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("key", sa.Text, nullable=False),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("time", _float, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("items", sa.LargeBinary, nullable=False),  # msgpack list of dicts
    # As histograms.epoch (schema version 14).
    sa.Column("epoch", sa.Integer, nullable=False, default=0, server_default="0"),
)
sa.Index("ix_media_run_key", media.c.run_pk, media.c.key)

#: Files of a run by their path in the run directory ("files/model.pt", "media/...",
#: "git.diff"); the content is a blob named by its sha256 (null until known).
run_files = sa.Table(
    "run_files",
    metadata,
    sa.Column("run_pk", sa.Integer, sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("path", sa.Text, primary_key=True),
    sa.Column("sha256", sa.String(64), nullable=True),
    sa.Column("size", sa.BigInteger, nullable=False, default=0),
    sa.Column("time", _float, nullable=False),
    sa.Column("origin", sa.String(8), nullable=False),  # "main" | "system"
    sa.Column("meta", sa.LargeBinary, nullable=False),  # msgpack: policy, source, kind
)
#: Reads by hash look up the runs naming the content (version 4).
RUN_FILES_BY_SHA = sa.Index("ix_run_files_sha256", run_files.c.sha256)

blobs = sa.Table(
    "blobs",
    metadata,
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("created_at", _float, nullable=False),
)

#: Who proved possession of a blob (``possession.py``): an entity may use content only
#: after it uploaded the bytes, however many others stored them before (version 4).
blob_owners = sa.Table(
    "blob_owners",
    metadata,
    sa.Column("entity_id", sa.Integer, sa.ForeignKey("entities.id"), primary_key=True),
    sa.Column("sha256", sa.String(64), sa.ForeignKey("blobs.sha256"), primary_key=True),
)

# -- artifacts (schema version 2) --------------------------------------------------------

#: An artifact: a name in a project; its versions are numbered from 0.
artifacts = sa.Table(
    "artifacts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("type", sa.String(128), nullable=False),
    sa.Column("versions", sa.Integer, nullable=False, default=0),  # the next version number
    sa.Column("created_at", _float, nullable=False),
    sa.Column("updated_at", _float, nullable=False),
    sa.UniqueConstraint("project_id", "name", name="uq_artifacts_project_name"),
)

#: A version: a manifest (msgpack: files [[path, sha256, size], ...] and references),
#: identified by its digest; the same digest logged again is the same version.
artifact_versions = sa.Table(
    "artifact_versions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("artifact_id", sa.Integer, sa.ForeignKey("artifacts.id"), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("manifest", sa.LargeBinary, nullable=False),
    sa.Column("metadata", sa.LargeBinary, nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("file_count", sa.Integer, nullable=False),
    sa.Column("producer_run_pk", sa.Integer, sa.ForeignKey("runs.id"), nullable=True),
    sa.Column("created_at", _float, nullable=False),
    sa.UniqueConstraint("artifact_id", "version", name="uq_artifact_versions_number"),
    sa.UniqueConstraint("artifact_id", "digest", name="uq_artifact_versions_digest"),
)
sa.Index("ix_artifact_versions_producer", artifact_versions.c.producer_run_pk)

#: An alias names one version of an artifact; moving it is an update of one row.
artifact_aliases = sa.Table(
    "artifact_aliases",
    metadata,
    sa.Column("artifact_id", sa.Integer, sa.ForeignKey("artifacts.id"), primary_key=True),
    sa.Column("alias", sa.String(64), primary_key=True),
    sa.Column("version_id", sa.Integer, sa.ForeignKey("artifact_versions.id"), nullable=False),
)

#: Lineage: a run used a version (``run.use_artifact``).
artifact_usage = sa.Table(
    "artifact_usage",
    metadata,
    sa.Column("run_pk", sa.Integer, sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("version_id", sa.Integer, sa.ForeignKey("artifact_versions.id"), primary_key=True),
    sa.Column("time", _float, nullable=False),
)
sa.Index("ix_artifact_usage_version", artifact_usage.c.version_id)

# -- console (schema version 5) ----------------------------------------------------------

#: The lines a run printed (``Console`` records), numbered from 0 per run in the order
#: they were applied; ingest applies each frame once, so a number is never reused.
console_lines = sa.Table(
    "console_lines",
    metadata,
    sa.Column("run_pk", sa.Integer, sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("line", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("stream", sa.String(8), nullable=False),  # "stdout" | "stderr"
    sa.Column("time", _float, nullable=False),
    # From stderr, or a traceback or error message: what "errors only" shows.
    sa.Column("error", sa.Boolean, nullable=False),
    sa.Column("text", sa.Text, nullable=False),  # with its ANSI colour codes
    # Lowercase and without ANSI codes, what search matches; null when ``text`` is that.
    sa.Column("plain", sa.Text, nullable=True),
)

# -- dashboard view settings (schema version 7) ------------------------------------------

#: A user's dashboard settings for a project (panels, layout, filters): a JSON document
#: the dashboard owns; the server checks only that it is an object of bounded size.
view_settings = sa.Table(
    "view_settings",
    metadata,
    sa.Column("user_id", sa.Integer, sa.ForeignKey("entities.id"), primary_key=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), primary_key=True),
    sa.Column("document", sa.Text, nullable=False),
    sa.Column("updated_at", _float, nullable=False),
)

# -- reports (schema version 8) ------------------------------------------------------------

#: A project's report: its current title and markdown (run sets and panels are fenced
#: blocks in it, see ``trackline._report_format``); every save is a row of ``report_versions``.
reports = sa.Table(
    "reports",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("slug", sa.String(128), nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_by", sa.Integer, sa.ForeignKey("entities.id"), nullable=False),
    sa.Column("created_at", _float, nullable=False),
    sa.Column("updated_by", sa.Integer, sa.ForeignKey("entities.id"), nullable=False),
    sa.Column("updated_at", _float, nullable=False),
    sa.UniqueConstraint("project_id", "slug", name="uq_reports_project_slug"),
)

report_versions = sa.Table(
    "report_versions",
    metadata,
    sa.Column("report_id", sa.Integer, sa.ForeignKey("reports.id"), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("author_id", sa.Integer, sa.ForeignKey("entities.id"), nullable=False),
    sa.Column("created_at", _float, nullable=False),
)

#: Read-only links to one report; the token is stored hashed, like API keys.
report_shares = sa.Table(
    "report_shares",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("report_id", sa.Integer, sa.ForeignKey("reports.id"), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("created_by", sa.Integer, sa.ForeignKey("entities.id"), nullable=False),
    sa.Column("created_at", _float, nullable=False),
    sa.Column("expires_at", _float, nullable=True),
    sa.Column("revoked_at", _float, nullable=True),
)
sa.Index("ix_report_shares_report", report_shares.c.report_id)

# -- uploads in parts (schema version 11) ----------------------------------------------

#: A file being uploaded in parts: whose, for which run's entity, its size and part size.
uploads = sa.Table(
    "uploads",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("part_size", sa.BigInteger, nullable=False),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("entities.id"), nullable=False),
    # The entity of the run it is uploaded for (it holds the content once complete).
    sa.Column("entity_id", sa.Integer, nullable=True),
    sa.Column("created_at", _float, nullable=False),
    sa.Column("updated_at", _float, nullable=False),
)
sa.Index("ix_uploads_owner", uploads.c.user_id, uploads.c.sha256)

upload_parts = sa.Table(
    "upload_parts",
    metadata,
    sa.Column("upload_id", sa.String(32), sa.ForeignKey("uploads.id"), primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
)

#: Tables added by each schema version (what its migration creates).
ADDED_IN = {
    2: [artifacts, artifact_versions, artifact_aliases, artifact_usage],
    4: [blob_owners],
    5: [console_lines],
    7: [view_settings],
    8: [reports, report_versions, report_shares],
    11: [uploads, upload_parts],
    12: [block_times, purged_runs],
}
