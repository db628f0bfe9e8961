"""``auditor serve --alert-webhook``: one message when the live gate turns failing for a key,
one when it recovers, delivered to a real HTTP receiver on 127.0.0.1 (its first answer is a
503, so the retry is exercised too)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from builders import to_json_bytes
from test_live import chat
from test_server_support import ROOT, Sidecar

from auditor.pipeline import audit_bytes
from auditor.plan import Plan
from auditor.schema import load_schema
from auditor.server.alerts import Alerter

SCHEMA = """version: 1
extends: [default]
gate:
  fail_on: never
  max_unattributed_pct: {tenant_id: 20}
"""


class Receiver:
    """A webhook endpoint: records every POST; answers 503 to the first ``fail_first``."""

    def __init__(self, fail_first: int = 0):
        self.posts: list[dict] = []
        self.accepted: list[dict] = []
        self.fail_first = fail_first
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                outer.posts.append(body)
                ok = len(outer.posts) > outer.fail_first
                if ok:
                    outer.accepted.append(body)
                self.send_response(200 if ok else 503)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def wait(self, n: int, timeout: float = 60) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.accepted) < n:
            assert time.monotonic() < deadline, f"{len(self.accepted)} of {n} alerts arrived: {self.posts}"
            time.sleep(0.05)
        return self.accepted

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver(fail_first=1)
    yield r
    r.close()


def traces(first: int, n: int, lost: int) -> bytes:
    return to_json_bytes([s for t in range(first, first + n) for s in chat(t, 0, lost=(t - first) < lost, second=t % 50)])


def test_one_alert_when_the_gate_fails_and_one_when_it_recovers(tmp_path, receiver):
    schema = tmp_path / "schema.yaml"
    schema.write_text(SCHEMA)
    s = Sidecar(tmp_path / "d", "--schema", str(schema), "--alert-webhook", receiver.url,
                "--alert-interval", "0.1", "--alert-window", "10m").start()
    try:
        assert s.post("/v1/traces", traces(1, 2, lost=1), "application/json").status_code == 200  # 50% > 20%
        s.wait_audited()
        [fail] = receiver.wait(1)
        assert fail["event"] == "failing" and fail["key"] == "tenant_id"
        assert fail["share_pct"] == 50.0 and fail["threshold_pct"] == 20 and fail["share_basis"] == "spend"
        assert fail["worst_boundary"] == "web / web.app : POST /chat -> web / openai : chat gpt-4o-mini"
        assert fail["example_trace"] == f"{1:032x}"
        assert fail["text"].startswith(":rotating_light: Attribution gate failing for `tenant_id`: 50.00% of LLM spend")
        assert len(receiver.posts) == 2  # the first delivery got a 503 and was retried
        m = s.metrics()  # the same series for Prometheus
        assert m['auditor_gate_failing{key="tenant_id"}'] == 1.0 and m['auditor_gate_failing{key="workflow_id"}'] == 0.0
        assert m['auditor_unattributed_limit_pct{key="tenant_id"}'] == 20.0
        assert m['auditor_unattributed_share_pct{basis="spend",key="tenant_id"}'] == 50.0
        assert m['auditor_unattributed_share_latest_pct{basis="spend",bucket="minute",key="tenant_id"}'] == 50.0
        assert m['auditor_key_llm_cost_usd{key="tenant_id"}'] == 2 * m['auditor_unattributed_cost_usd{key="tenant_id"}']
        rules = (ROOT / "schemas" / "prometheus" / "auditor-alerts.yaml").read_text()
        exposed = {name.split("{")[0] for name in m}
        used = set(re.findall(r"\b(auditor_[a-z_]+)", rules))
        assert used and used <= exposed, used - exposed  # the example rules name real series

        assert s.post("/v1/traces", traces(10, 8, lost=0), "application/json").status_code == 200  # 1 of 10: 10%
        s.wait_audited()
        fail, ok = receiver.wait(2)
        assert ok["event"] == "recovered" and ok["key"] == "tenant_id" and ok["share_pct"] == 10.0
        assert ok["text"].startswith(":white_check_mark: Attribution gate recovered for `tenant_id`")
        time.sleep(1.0)  # ten more looks at the gate: nothing new to say
        assert len(receiver.accepted) == 2
        assert s.report()["summary"]["gate"]["passed"] is True
        assert s.metrics()['auditor_gate_failing{key="tenant_id"}'] == 0.0
        code, err = s.terminate()
        assert code == 0 and "alert webhook: attempt 1 failed (HTTP 503); retrying in 1s" in err
    finally:
        s.stop()


def test_a_flapping_key_is_told_once_per_state_within_the_window(tmp_path):
    r = Receiver()
    try:
        plan = Plan.fixed(load_schema(str(_schema(tmp_path))))
        bad = audit_bytes([("a", traces(1, 2, lost=1))], plan)
        good = audit_bytes([("b", traces(1, 10, lost=1))], plan)
        logged: list[str] = []
        a = Alerter(r.url, window=300, state_path=tmp_path / "alerts.json", log=logged.append)
        assert [a.check(x, now=t) for x, t in ((bad, 0), (bad, 1), (good, 2), (bad, 3), (good, 4))] == [1, 0, 1, 0, 0]
        assert [m["event"] for m in r.accepted] == ["failing", "recovered"]
        assert a.check(bad, now=301) == 1  # the window has passed and it is failing again
        # a restart remembers what it last told
        again = Alerter(r.url, window=300, state_path=tmp_path / "alerts.json", log=logged.append)
        assert again.check(bad, now=302) == 0 and again.check(good, now=303) == 1
        # an unreachable receiver is logged, never raised
        r.close()
        down = Alerter(r.url, window=300, state_path=None, log=logged.append, retries=2, backoff=0.01)
        assert down.check(bad, now=0) == 0
        assert any("not delivered after 2 attempt(s)" in line for line in logged)
    finally:
        r.close()


def _schema(tmp_path):
    p = tmp_path / "schema.yaml"
    p.write_text(SCHEMA)
    return p


def test_example_alerting_rules_are_valid_prometheus_rules():
    rules = ROOT / "schemas" / "prometheus" / "auditor-alerts.yaml"
    import yaml

    doc = yaml.safe_load(rules.read_text())
    names = [r.get("alert") or r.get("record") for g in doc["groups"] for r in g["rules"]]
    assert "AttributionGateFailing" in names and "UnattributedSpendOverLimit" in names
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian: apt-get install prometheus)")
    out = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
