"""Throughput of Claude Code api_request log records through decode + audit (preset:claude-code).

    python tests/bench/bench_logs.py [N]    # prints records/s for decode and for audit
"""
import sys
import tempfile
import time
from pathlib import Path

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from builders import _any
from auditor import ingest
from auditor.engine import audit
from auditor.plan import Plan
from auditor.schema import load_schema

N = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
req = ExportLogsServiceRequest()
for dev in range(50):
    rl = req.resource_logs.add()
    rl.resource.attributes.extend(KeyValue(key=k, value=_any(v)) for k, v in {"service.name": "claude-code", "team.id": f"t{dev % 5}", "cost_center": "c", "repository": "r"}.items())
    sl = rl.scope_logs.add(); sl.scope.name = "com.anthropic.claude_code.events"
    for i in range(N // 50):
        r = sl.log_records.add(); r.time_unix_nano = 1_767_225_600_000_000_000 + i * 1_000_000_000 + dev
        r.body.string_value = "claude_code.api_request"
        attrs = {"event.name": "api_request", "session.id": f"s{dev}-{i // 20}", "user.email": f"d{dev}@x.com", "model": "claude-sonnet-4-5-20250929",
                 "cost_usd": 0.01, "duration_ms": 1000 + i, "input_tokens": 100 + i, "output_tokens": 50, "cache_read_tokens": 1000, "cache_creation_tokens": 10, "prompt.id": f"p{i}"}
        r.attributes.extend(KeyValue(key=k, value=_any(v)) for k, v in attrs.items())
path = str(Path(tempfile.mkdtemp()) / "bench_logs.pb")
open(path, "wb").write(req.SerializeToString())
schema = load_schema("preset:claude-code"); c = Plan.fixed(schema)
t0 = time.perf_counter(); loaded = ingest.load([path], c.projection); t1 = time.perf_counter()
r = audit(loaded.spans, schema, plan=c); t2 = time.perf_counter()
print(f"{N} records: decode {t1 - t0:.2f}s ({N / (t1 - t0):,.0f}/s), audit {t2 - t1:.2f}s ({N / (t2 - t1):,.0f}/s), {len(r.calls)} calls, ${r.total_cost_usd}")
