"""The OpenAPI document as a contract: response schemas, error statuses and links.

Response bodies are the msgspec types of ``trackline._wire_types``, published as
components. Every route documents the errors any route may answer (``ERRORS``: a
missing or wrong key, a refusal, a missing thing, an invalid request, a busy server)
plus the statuses it answers itself (``answers(..., 409)``). Links tell a client (and
schemathesis' stateful phase) which response feeds which request: a created key can
be revoked, a listed run can be read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from fastapi import FastAPI
from trackline import _wire_types as wire

REF = "#/components/schemas/{name}"
PREFIX = "/api/v1"

_REASONS = {
    400: "The request is well formed but cannot be carried out as it is.",
    401: "An API key is needed, or the key is not valid.",
    403: "The caller may not do this.",
    404: "No such thing (or none the caller may see).",
    409: "Conflicts with the current state.",
    410: "The run was deleted for good (its creator is told; anyone else gets 404).",
    413: "The body is larger than the server takes.",
    415: "Unsupported Content-Encoding.",
    416: "The byte range asked for is outside the content.",
    422: "The request does not match its schema.",
    501: "The server lacks an optional component (pyarrow).",
    503: "The server is busy: retry after `Retry-After` seconds.",
    507: "The quota or the server's storage is full.",
}

#: Answers any route may give.
ERRORS = (401, 403, 404, 422, 503)
#: Answers of the route that takes run logs: not a run log, too large (compressed or not),
#: an encoding other than gzip or deflate, no room left.
UPLOAD_ERRORS = (400, 413, 415, 507)

#: For routes that serve anonymous callers too (public projects).
OPTIONAL_AUTH: dict[str, Any] = {"security": [{}, {"HTTPBearer": []}]}


def _ref(kind: type) -> dict[str, Any]:
    return {"$ref": REF.format(name=kind.__name__)}


def _error(status: int) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": _REASONS[status],
        "content": {"application/json": {"schema": _ref(wire.ErrorBody)}},
    }
    if status == 503:
        answer["headers"] = {
            "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}
        }
    return answer


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The error answers ``statuses`` (with the shared error body)."""
    return {status: _error(status) for status in statuses}


def answers(
    kind: type | None,
    *statuses: int,
    status: int = 200,
    description: str = "Success.",
    media: dict[str, Any] | None = None,
) -> dict[int | str, dict[str, Any]]:
    """A route's success answer (a ``kind`` as JSON, or ``media`` types) and its own errors."""
    content: dict[str, Any] = {}
    if kind is not None:
        content["application/json"] = {"schema": _ref(kind)}
    content.update(media or {})
    ok: dict[str, Any] = {"description": description}
    if content:
        ok["content"] = content
    return {status: ok, **errors(*statuses)}


BINARY = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}


# -- links -----------------------------------------------------------------------------

_FIRST_RUN = {"run_id": "$response.body#/runs/0/id"}
_FIRST_PROJECT = {
    "entity": "$response.body#/projects/0/entity",
    "project": "$response.body#/projects/0/name",
}
_SAME_PROJECT = {"entity": "$request.path.entity", "project": "$request.path.project"}

#: (method, path, status) of a response -> (method, path, parameters) it feeds.
Link = tuple[tuple[str, str, int], tuple[str, str, dict[str, str]]]

LINKS: list[Link] = [
    (("post", "/keys", 201), ("delete", "/keys/{key_id}", {"key_id": "$response.body#/id"})),
    (("get", "/keys", 200), ("delete", "/keys/{key_id}", {"key_id": "$response.body#/keys/0/id"})),
    (
        ("put", "/blobs/{sha256}", 200),
        ("head", "/blobs/{sha256}", {"sha256": "$response.body#/sha256"}),
    ),
    (
        ("put", "/blobs/{sha256}", 200),
        ("get", "/blobs/{sha256}", {"sha256": "$response.body#/sha256"}),
    ),
    (("get", "/runs/{run_id}", 200), ("patch", "/runs/{run_id}", {"run_id": "$response.body#/id"})),
]

#: Responses that name things -> every operation on such a thing (by its path's start).
FAMILIES: list[tuple[tuple[str, str, int], str, dict[str, str]]] = [
    (("get", "/projects", 200), "/projects/{entity}/{project}", _FIRST_PROJECT),
    (("get", "/projects/{entity}/{project}/runs", 200), "/runs/{run_id}", _FIRST_RUN),
    (("post", "/projects/{entity}/{project}/runs/query", 200), "/runs/{run_id}", _FIRST_RUN),
    (("get", "/projects/{entity}/{project}", 200), "/projects/{entity}/{project}/", _SAME_PROJECT),
]


def _all_links(doc: dict[str, Any]) -> list[Link]:
    links = list(LINKS)
    for source, prefix, parameters in FAMILIES:
        for path, operations in doc["paths"].items():
            short = path.removeprefix(PREFIX)
            if short == prefix or short.startswith(prefix.rstrip("/") + "/"):
                links += [(source, (method, short, parameters)) for method in operations]
    return links


def _add_links(doc: dict[str, Any]) -> None:
    paths = doc["paths"]
    for (method, path, status), (to_method, to_path, parameters) in _all_links(doc):
        source = paths.get(PREFIX + path, {}).get(method)
        target = paths.get(PREFIX + to_path, {}).get(to_method)
        if source is None or target is None:
            raise RuntimeError(f"a link names an unknown operation: {method} {path}")
        if source is target:
            continue
        name = "".join(c if c.isalnum() else "_" for c in f"{to_method}{to_path}").strip("_")
        source["responses"][str(status)].setdefault("links", {})[name] = {
            "operationId": target["operationId"],
            "parameters": parameters,
        }


def _json_bodies(doc: dict[str, Any]) -> None:
    """A JSON body that is not JSON at all is refused with 400 before any validation."""
    for operations in doc["paths"].values():
        for operation in operations.values():
            body = operation.get("requestBody", {}).get("content", {})
            if "application/json" in body:
                operation["responses"].setdefault("400", _error(400))


def _absent_not_null(doc: dict[str, Any]) -> None:
    """An optional query parameter is absent or a value: never ``null`` (pydantic's
    ``X | None`` says so), so a client does not send ``?tag=`` for "no tags"."""
    for operations in doc["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                schema = parameter.get("schema", {})
                kinds = schema.get("anyOf", [])
                if parameter["in"] != "query" or {"type": "null"} not in kinds:
                    continue
                rest = [kind for kind in kinds if kind != {"type": "null"}]
                del schema["anyOf"]
                if len(rest) == 1:
                    schema.update(rest[0])
                else:
                    schema["anyOf"] = rest


def install(app: FastAPI) -> None:
    """Publish the response types as components and the links, once, when first asked."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        doc = build()
        _, components = msgspec.json.schema_components(wire.ALL, ref_template=REF)
        doc.setdefault("components", {}).setdefault("schemas", {}).update(components)
        _json_bodies(doc)
        _absent_not_null(doc)
        _add_links(doc)
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
