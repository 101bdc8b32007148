"""Refresh the dashboard's vendored libraries from the npm registry.

The dashboard needs no build step: it loads plain ES modules, and its few
third-party files (and Swagger UI's, for the API's pages) are copied here, pinned,
with their licences. This script fetches each pinned package with ``npm pack``
(the registry's own client checks the tarball's integrity), copies the listed files into ``server/static/vendor/``
and writes ``vendor/MANIFEST.json`` with the version and integrity of each.

Usage::

    python tools/refresh_vendor.py            # fetch the pinned versions
    python tools/refresh_vendor.py --check    # fail if the files differ from a fresh fetch

To upgrade, change a version in ``PACKAGES`` and run the script.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "server" / "static" / "vendor"


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    #: Path inside the tarball (under ``package/``) -> file name in ``vendor/<name>/``.
    files: dict[str, str]


#: KaTeX's fonts (woff2 only: every browser the dashboard runs in reads it).
KATEX_FONTS = [
    "AMS-Regular",
    "Caligraphic-Bold",
    "Caligraphic-Regular",
    "Fraktur-Bold",
    "Fraktur-Regular",
    "Main-Bold",
    "Main-BoldItalic",
    "Main-Italic",
    "Main-Regular",
    "Math-BoldItalic",
    "Math-Italic",
    "SansSerif-Bold",
    "SansSerif-Italic",
    "SansSerif-Regular",
    "Script-Regular",
    "Size1-Regular",
    "Size2-Regular",
    "Size3-Regular",
    "Size4-Regular",
    "Typewriter-Regular",
]

PACKAGES = (
    Package(
        "uplot",
        "1.6.32",
        {
            "dist/uPlot.esm.js": "uPlot.esm.js",
            "dist/uPlot.min.css": "uPlot.min.css",
            "LICENSE": "LICENSE",
        },
    ),
    # Reports and notes: markdown-it walked into DOM (util/markdown.js), never HTML.
    Package(
        "markdown-it",
        "15.0.3",
        {"dist/browser/markdown-it.esm.min.mjs": "markdown-it.js", "LICENSE": "LICENSE"},
    ),
    Package(
        "markdown-it-footnote",
        "4.0.0",
        {"index.mjs": "markdown-it-footnote.js", "LICENSE": "LICENSE"},
    ),
    # Math in reports and notes, loaded only when a page has some; KaTeX builds DOM nodes.
    Package(
        "katex",
        "0.19.1",
        {
            "dist/katex.mjs": "katex.js",
            "dist/katex.min.css": "katex.min.css",
            "LICENSE": "LICENSE",
            **{
                f"dist/fonts/KaTeX_{font}.woff2": f"fonts/KaTeX_{font}.woff2"
                for font in KATEX_FONTS
            },
        },
    ),
    # The API's pages at /api/v1/docs (server/app.py), which load nothing from elsewhere.
    Package(
        "swagger-ui-dist",
        "5.35.0",
        {
            "swagger-ui-bundle.js": "swagger-ui-bundle.js",
            "swagger-ui.css": "swagger-ui.css",
            "LICENSE": "LICENSE",
        },
    ),
)


def _npm_pack(spec: str, dest: Path) -> tuple[Path, dict[str, str]]:
    """Download ``spec`` with ``npm pack``; the tarball's path and npm's metadata."""
    out = subprocess.run(
        ["npm", "pack", spec, "--json", "--pack-destination", str(dest)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    info = json.loads(out)[0]
    return dest / info["filename"], {"integrity": info["integrity"], "shasum": info["shasum"]}


def _fetch(package: Package, work: Path) -> tuple[dict[str, bytes], dict[str, str]]:
    tarball, meta = _npm_pack(f"{package.name}@{package.version}", work)
    contents: dict[str, bytes] = {}
    with tarfile.open(tarball, "r:gz") as archive:
        for source, target in package.files.items():
            member = archive.extractfile(f"package/{source}")
            if member is None:
                raise SystemExit(f"{package.name}@{package.version} has no {source}")
            contents[target] = member.read()
    return contents, meta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args(argv)
    if shutil.which("npm") is None:
        print("npm is needed (Node.js): https://nodejs.org/", file=sys.stderr)
        return 2
    manifest: dict[str, dict[str, object]] = {}
    stale: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for package in PACKAGES:
            contents, meta = _fetch(package, Path(tmp))
            folder = VENDOR / package.name
            files = {name: hashlib.sha256(data).hexdigest() for name, data in contents.items()}
            manifest[package.name] = {"version": package.version, **meta, "files": files}
            for name, data in contents.items():
                target = folder / name
                if args.check:
                    if not target.is_file() or target.read_bytes() != data:
                        stale.append(str(target.relative_to(ROOT)))
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            print(f"{package.name}@{package.version}: {', '.join(sorted(contents))}")
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    manifest_path = VENDOR / "MANIFEST.json"
    if args.check:
        if not manifest_path.is_file() or manifest_path.read_text() != text:
            stale.append(str(manifest_path.relative_to(ROOT)))
        if stale:
            print("out of date: " + ", ".join(stale), file=sys.stderr)
            return 1
        print("vendored files are up to date")
        return 0
    manifest_path.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
