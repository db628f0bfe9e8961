"""Machine-readable result; the format is documented by schemas/report.schema.json."""

from __future__ import annotations

import json

from auditor.result_json import to_json


def render(result, options=None) -> str:
    return json.dumps(to_json(result), indent=2, sort_keys=False, ensure_ascii=False) + "\n"
