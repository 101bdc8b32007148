"""The dashboard's JSDoc typedefs are generated from the wire types and kept up to date."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("wire_jsdoc", ROOT / "tools" / "wire_jsdoc.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_wire_types_js_is_generated_from_the_wire_types() -> None:
    generator = _generator()
    checked_in = (ROOT / "server" / "static" / "js" / "wire-types.js").read_text(encoding="utf-8")
    assert checked_in == generator.render(), "run: python tools/wire_jsdoc.py"


def test_every_wire_struct_and_field_is_declared() -> None:
    from trackline import _wire_types as wt

    text = _generator().render()
    for cls in wt.ALL:
        assert f"@typedef {{Object}} {cls.__name__}\n" in text
        for name in cls.__struct_fields__:
            assert f"}} {name}\n" in text or f"}} [{name}]\n" in text, (cls, name)
    assert "@property {?number} [updated_at]" in text  # optional and nullable, as in Python
