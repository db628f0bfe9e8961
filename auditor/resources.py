"""Where bundled data (schemas, presets, semconv tables) lives, installed or in a checkout."""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def schemas_dir() -> Path:
    for candidate in (_HERE.parent / "schemas", _HERE / "_schemas"):
        if (candidate / "attribution-schema.schema.json").is_file():
            return candidate
    raise FileNotFoundError("bundled schemas/ directory not found; reinstall the package")
