"""How long each report format takes to render, and how big it is: ``python -m auditor.bench_reports``.

Audits one synthetic corpus (auditor.bench's generator) once, then renders every format from
the same AuditResult, so the figures are the reporters' own cost.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from auditor.bench import write_corpus
from auditor.pipeline import audit_files
from auditor.plan import Plan
from auditor.report import Format, RenderOptions, render


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m auditor.bench_reports", description=__doc__.split("\n")[0])
    ap.add_argument("--spans", type=int, default=100_000, help="corpus size in spans [100000]")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "corpus.pb"
        write_corpus(path, args.spans, "pb")
        t0 = time.perf_counter()
        result = audit_files([str(path)], Plan.of(None))
        audit_s = time.perf_counter() - t0
    print(
        f"corpus: {result.counts.spans} spans, {result.counts.traces} traces, {len(result.calls)} LLM calls, "
        f"{len(result.findings)} findings, {len(result.boundaries)} boundaries; audit {audit_s:.2f} s"
    )
    print(f"{'format':<10}{'seconds':>10}{'bytes':>14}")
    for fmt in Format:
        t0 = time.perf_counter()
        text = render(fmt, result, RenderOptions())
        print(f"{fmt.value:<10}{time.perf_counter() - t0:>10.3f}{len(text.encode()):>14,}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
