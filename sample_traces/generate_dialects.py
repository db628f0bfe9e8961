"""Regenerate every dialect sample, each generator in its own process (instrumentations patch
client libraries globally, so two of them must never share an interpreter by accident).

    /work/venv-samples/bin/python sample_traces/generate_dialects.py [NAME...]

NAME is a generator suffix: openllmetry, otel, openinference, langfuse, traceai, mixed, gateways.
Needs the ``[samples]`` extra (see generate_dialects_kit.py). After regenerating, update the
expectations in tests/test_presets.py: span ids, timestamps and so the expected values change.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
GENERATORS = ("openllmetry", "otel", "openinference", "langfuse", "traceai", "mixed", "gateways")


def main(names) -> int:
    failed = []
    for name in names or GENERATORS:
        script = HERE / f"generate_dialects_{name}.py"
        print(f"== {script.name}", flush=True)
        if subprocess.run([sys.executable, str(script)]).returncode != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
