"""Traces shared by the report, UI and browser tests: a leak with attacker-controlled names."""

from __future__ import annotations

from pathlib import Path

from builders import LLM, mk, to_json_bytes

from auditor.engine import audit
from auditor.schema import load_schema

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = Path(__file__).resolve().parent / "schemas"
BAGGAGE = ROOT / "sample_traces" / "core" / "baggage_dropped.otlp.json"
THREADPOOL_PB = ROOT / "sample_traces" / "core" / "threadpool.pb.gz"

XSS_NAME = '<script>window.__xss="name"</script><img src=x onerror="window.__xss=\'img\'">'
XSS_VALUE = '"><svg onload="window.__xss=\'value\'">'
CODE = {"code.filepath": "app/worker.py", "code.lineno": 42, "code.function": "score_lead"}


def leak_spans():
    """web (tenant set) -> worker over the network (tenant lost) -> LLM call; hostile names and values."""
    return [
        mk(1, 1, None, name="POST /leads", service="web", scope="web.app",
           attrs={"tenant_id": XSS_VALUE, "workflow_id": "wf|1"}),
        mk(1, 2, 1, name=XSS_NAME, service="worker", scope="worker.app", attrs=dict(CODE), start=10, dur=500),
        mk(1, 3, 2, name="chat gpt-4o-mini", service="worker", scope="openai", attrs=dict(LLM), start=20, dur=400),
    ]


def leak_result():
    return audit(leak_spans(), load_schema(), inputs=("leak.otlp.json",))


def leak_json_bytes() -> bytes:
    return to_json_bytes(leak_spans())
