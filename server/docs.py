"""The API's pages at ``/api/v1/docs``: Swagger UI, served from the package.

FastAPI's own page loads Swagger UI from a CDN, so it is blank without internet.
This one loads the copy vendored under ``static/vendor/swagger-ui-dist/`` and is
served under the dashboard's Content-Security-Policy, with the page's one inline
script allowed by its hash.
"""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

PATH = "/api/v1/docs"
VENDOR = "/vendor/swagger-ui-dist"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def install(app: FastAPI, policy: str) -> None:
    """Serve the docs page at ``PATH`` (create ``app`` with ``docs_url=None``)."""

    @app.get(PATH, include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        return page(request.scope.get("root_path", "").rstrip("/"), app, policy)


def page(root: str, app: FastAPI, policy: str) -> HTMLResponse:
    """Swagger UI for ``app``'s OpenAPI document, every URL under ``root``."""
    assert app.openapi_url is not None
    response = get_swagger_ui_html(
        openapi_url=root + app.openapi_url,
        title=f"{app.title} API",
        swagger_js_url=f"{root}{VENDOR}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{VENDOR}/swagger-ui.css",
        swagger_favicon_url=f"{root}/favicon.svg",
        # The default validator is an outside service; the page asks nothing of one.
        swagger_ui_parameters={"validatorUrl": None},
    )
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in _INLINE_SCRIPT.findall(bytes(response.body).decode())
    )
    response.headers["Content-Security-Policy"] = policy.replace(
        "script-src 'self'", f"script-src 'self' {hashes}"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
