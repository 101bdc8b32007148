"""Artifacts on the server: versions numbered at ingest, aliases, lineage, and reading them.

A version is assigned in the transaction that applies the run's ``ArtifactLogged``
record, under a lock on the artifact's row (``FOR UPDATE`` on PostgreSQL; SQLite's
``BEGIN IMMEDIATE`` already serialises writers): two runs logging the same name at
once get ``v0`` and ``v1``, and the aliases they name end on the version applied
last. The same digest logged again is the same version; only its aliases move.
An alias is one row (artifact, alias) -> version, so moving it is atomic.
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from trackline.artifacts import VERSION, ArtifactError, check_alias, check_name, entry_name
from trackline.artifacts import manifest_digest as digest_of
from trackline.records import ArtifactLogged, ArtifactUsed

from . import auth, files, possession, query
from .runstate import pack, unpack
from .schema import (
    artifact_aliases,
    artifact_usage,
    artifact_versions,
    artifacts,
    entities,
    projects,
    runs,
)

#: The most files one version may list.
MAX_FILES = 100_000


class Invalid(ValueError):
    """A record that cannot describe an artifact (answered 422)."""


def _insert(conn: sa.Connection, table: sa.Table) -> Any:
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def check_record(record: ArtifactLogged) -> list[tuple[str, str, int]]:
    """The record's files as ``(path, sha256, size)``, checked; raises ``Invalid``."""
    try:
        check_name(record.name)
        check_name(record.artifact_type, "artifact type")
        for alias in record.aliases:
            check_alias(alias)
        paths = [entry_name(f.path) for f in record.files]
        for name in record.references:
            entry_name(name)
    except ArtifactError as exc:
        raise Invalid(str(exc)) from None
    if len(record.files) > MAX_FILES:
        raise Invalid(f"an artifact version lists at most {MAX_FILES} files")
    if len(set(paths)) != len(paths):
        raise Invalid(f"artifact {record.name!r} lists a file twice")
    out: list[tuple[str, str, int]] = []
    for path, entry in zip(paths, record.files, strict=True):
        if not files.valid_sha256(entry.sha256) or entry.size < 0:
            raise Invalid(f"artifact file {path!r} needs a sha256 and a size")
        out.append((path, entry.sha256, entry.size))
    if digest_of(record.files, record.references) != record.digest:
        raise Invalid(f"the digest of artifact {record.name!r} does not match its manifest")
    return out


def log_version(
    conn: sa.Connection, project_id: int, run_pk: int, record: ArtifactLogged
) -> tuple[int, int]:
    """Apply an ``ArtifactLogged`` record (checked): (version row id, version number)."""
    entries = check_record(record)
    now = time.time()
    conn.execute(
        _insert(conn, artifacts)
        .values(
            project_id=project_id,
            name=record.name,
            type=record.artifact_type,
            versions=0,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing()
    )
    artifact = conn.execute(
        sa.select(artifacts)
        .where(artifacts.c.project_id == project_id, artifacts.c.name == record.name)
        .with_for_update()
    ).one()
    known = conn.execute(
        sa.select(artifact_versions.c.id, artifact_versions.c.version).where(
            artifact_versions.c.artifact_id == artifact.id,
            artifact_versions.c.digest == record.digest,
        )
    ).first()
    if known is not None:
        version_id, number = int(known.id), int(known.version)
    else:
        number = int(artifact.versions)
        manifest = {"files": [list(e) for e in entries], "references": dict(record.references)}
        version_id = int(
            conn.execute(
                artifact_versions.insert()
                .values(
                    artifact_id=artifact.id,
                    version=number,
                    digest=record.digest,
                    manifest=pack(manifest),
                    metadata=pack(record.metadata),
                    description=record.description,
                    size=sum(e[2] for e in entries),
                    file_count=len(entries),
                    producer_run_pk=run_pk,
                    created_at=record.time or now,
                )
                .returning(artifact_versions.c.id)
            ).scalar_one()
        )
    conn.execute(
        artifacts.update()
        .where(artifacts.c.id == artifact.id)
        .values(versions=max(int(artifact.versions), number + 1), updated_at=now)
    )
    for alias in dict.fromkeys(record.aliases):
        insert = _insert(conn, artifact_aliases).values(
            artifact_id=artifact.id, alias=alias, version_id=version_id
        )
        conn.execute(
            insert.on_conflict_do_update(
                index_elements=[artifact_aliases.c.artifact_id, artifact_aliases.c.alias],
                set_={"version_id": version_id},
            )
        )
    return version_id, number


def record_use(conn: sa.Connection, run_pk: int, user: auth.User, record: ArtifactUsed) -> bool:
    """Lineage from an ``ArtifactUsed`` record; ``False`` (and nothing stored) if unknown."""
    parts = record.path.split("/")
    if len(parts) != 3:
        return False
    entity, project, name = parts
    found = query.project_row(conn, entity, project)
    if found is None or not query.can_read(user, found):
        return False
    version = conn.execute(
        sa.select(artifact_versions.c.id)
        .select_from(artifact_versions.join(artifacts))
        .where(
            artifacts.c.project_id == found.id,
            artifacts.c.name == name,
            artifact_versions.c.digest == record.digest,
        )
    ).first()
    if version is None:
        return False
    conn.execute(
        _insert(conn, artifact_usage)
        .values(run_pk=run_pk, version_id=version.id, time=record.time or time.time())
        .on_conflict_do_nothing()
    )
    return True


# -- reading ---------------------------------------------------------------------------


def artifact_row(conn: sa.Connection, project_id: int, name: str) -> Any:
    return conn.execute(
        sa.select(artifacts).where(artifacts.c.project_id == project_id, artifacts.c.name == name)
    ).first()


def resolve(conn: sa.Connection, artifact_id: int, which: str) -> Any:
    """The version row of ``vN`` or of an alias, or ``None``."""
    select = sa.select(artifact_versions)
    if VERSION.match(which):
        select = select.where(
            artifact_versions.c.artifact_id == artifact_id,
            artifact_versions.c.version == int(which[1:]),
        )
    else:
        select = select.select_from(
            artifact_versions.join(
                artifact_aliases, artifact_aliases.c.version_id == artifact_versions.c.id
            )
        ).where(artifact_aliases.c.artifact_id == artifact_id, artifact_aliases.c.alias == which)
    return conn.execute(select).first()


def aliases_of(conn: sa.Connection, artifact_id: int) -> dict[int, list[str]]:
    """Version row id -> its aliases, sorted."""
    out: dict[int, list[str]] = {}
    for version_id, alias in conn.execute(
        sa.select(artifact_aliases.c.version_id, artifact_aliases.c.alias)
        .where(artifact_aliases.c.artifact_id == artifact_id)
        .order_by(artifact_aliases.c.alias)
    ):
        out.setdefault(int(version_id), []).append(alias)
    return out


def list_artifacts(conn: sa.Connection, project_id: int, path: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.select(artifacts).where(artifacts.c.project_id == project_id).order_by(artifacts.c.name)
    ).all()
    out = []
    for row in rows:
        aliases = aliases_of(conn, row.id)
        numbers = dict(
            conn.execute(
                sa.select(artifact_versions.c.id, artifact_versions.c.version).where(
                    artifact_versions.c.artifact_id == row.id
                )
            ).all()
        )
        out.append(
            {
                "name": row.name,
                "type": row.type,
                "path": f"{path}/{row.name}",
                "versions": len(numbers),
                "aliases": {
                    alias: f"v{numbers[vid]}" for vid, names in aliases.items() for alias in names
                },
                "created_at": row.created_at,
                "updated_at": row.updated_at,
            }
        )
    return out


def version_dict(
    conn: sa.Connection,
    artifact: Any,
    version: Any,
    path: str,
    aliases: list[str],
    detail: bool = False,
) -> dict[str, Any]:
    producer = None
    if version.producer_run_pk is not None:
        producer = conn.execute(
            sa.select(runs.c.run_id).where(runs.c.id == version.producer_run_pk)
        ).scalar_one_or_none()
    out: dict[str, Any] = {
        "name": artifact.name,
        "type": artifact.type,
        "path": f"{path}/{artifact.name}",
        "version": version.version,
        "digest": version.digest,
        "aliases": aliases,
        "metadata": unpack(version.metadata, {}),
        "description": version.description,
        "size": version.size,
        "file_count": version.file_count,
        "producer": producer,
        "created_at": version.created_at,
    }
    if detail:
        manifest = unpack(version.manifest, {})
        entries = [
            {"path": p, "sha256": sha, "size": size} for p, sha, size in manifest.get("files", [])
        ]
        entity = conn.execute(
            sa.select(projects.c.entity_id).where(projects.c.id == artifact.project_id)
        ).scalar_one()
        stored = possession.held(conn, entity, [e["sha256"] for e in entries])
        for entry in entries:
            entry["uploaded"] = entry["sha256"] in stored
        out["files"] = entries
        out["references"] = manifest.get("references", {})
        out["complete"] = all(e["uploaded"] for e in entries)
    return out


def versions(conn: sa.Connection, artifact: Any, path: str) -> list[dict[str, Any]]:
    aliases = aliases_of(conn, artifact.id)
    rows = conn.execute(
        sa.select(artifact_versions)
        .where(artifact_versions.c.artifact_id == artifact.id)
        .order_by(artifact_versions.c.version)
    ).all()
    return [version_dict(conn, artifact, v, path, aliases.get(v.id, [])) for v in rows]


def _run_refs(conn: sa.Connection, run_pks: list[int], user: auth.User | None) -> list[Any]:
    """Runs as ``{"id", "name", "project"}``; runs the caller may not read are left out."""
    if not run_pks:
        return []
    rows = conn.execute(
        sa.select(
            runs.c.run_id,
            runs.c.name,
            projects.c.name.label("project"),
            projects.c.public,
            projects.c.entity_id,
            entities.c.name.label("entity"),
        )
        .select_from(
            runs.join(projects, runs.c.project_id == projects.c.id).join(
                entities, projects.c.entity_id == entities.c.id
            )
        )
        .where(runs.c.id.in_(run_pks))
        .order_by(runs.c.id)
    ).all()
    return [
        {"id": r.run_id, "name": r.name, "project": f"{r.entity}/{r.project}"}
        for r in rows
        if query.can_read(user, r)
    ]


def lineage(conn: sa.Connection, version: Any, user: auth.User | None) -> dict[str, Any]:
    """The run that produced a version and the runs that used it (those the caller can read)."""
    producers = _run_refs(
        conn, [version.producer_run_pk] if version.producer_run_pk is not None else [], user
    )
    consumers = conn.execute(
        sa.select(artifact_usage.c.run_pk).where(artifact_usage.c.version_id == version.id)
    ).scalars()
    return {
        "producer": producers[0] if producers else None,
        "consumers": _run_refs(conn, [int(pk) for pk in consumers], user),
    }


def _version_refs(
    conn: sa.Connection, version_ids: list[int], user: auth.User | None
) -> list[dict[str, Any]]:
    """Versions as references; those in projects the caller may not read are left out."""
    if not version_ids:
        return []
    rows = conn.execute(
        sa.select(
            artifact_versions.c.version,
            artifact_versions.c.digest,
            artifacts.c.name,
            artifacts.c.type,
            projects.c.name.label("project"),
            projects.c.public,
            projects.c.entity_id,
            entities.c.name.label("entity"),
        )
        .select_from(
            artifact_versions.join(artifacts)
            .join(projects, artifacts.c.project_id == projects.c.id)
            .join(entities, projects.c.entity_id == entities.c.id)
        )
        .where(artifact_versions.c.id.in_(version_ids))
        .order_by(artifact_versions.c.id)
    ).all()
    return [
        {
            "path": f"{r.entity}/{r.project}/{r.name}",
            "name": r.name,
            "type": r.type,
            "version": r.version,
            "digest": r.digest,
        }
        for r in rows
        if query.can_read(user, r)
    ]


def run_artifacts(conn: sa.Connection, run_pk: int, user: auth.User | None) -> dict[str, Any]:
    """Versions a run logged and used (a run of a public project may have used a private
    version: it is left out for whoever may not read it)."""
    logged = conn.execute(
        sa.select(artifact_versions.c.id).where(artifact_versions.c.producer_run_pk == run_pk)
    ).scalars()
    used = conn.execute(
        sa.select(artifact_usage.c.version_id).where(artifact_usage.c.run_pk == run_pk)
    ).scalars()
    return {
        "logged": _version_refs(conn, [int(v) for v in logged], user),
        "used": _version_refs(conn, [int(v) for v in used], user),
    }
