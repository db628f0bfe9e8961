"""The Collector config users copy for N sidecars (schemas/collector/loadbalancing-sidecars.yaml)
has what the README's recipe relies on, and the README shows the same exporter."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from auditor.commands.serve import command as serve

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "schemas" / "collector" / "loadbalancing-sidecars.yaml"


def _default(cmd, name):
    return next(p.default for p in cmd.params if p.name == name)


def test_config_routes_by_trace_id_to_the_sidecars_grpc_port_with_the_token():
    cfg = yaml.safe_load(CONFIG.read_text())
    lb = cfg["exporters"]["loadbalancing"]
    assert lb["routing_key"] == "traceID"  # a trace lands whole on one sidecar
    otlp = lb["protocol"]["otlp"]
    assert otlp["headers"]["authorization"] == "Bearer ${env:AUDITOR_TOKEN}"
    assert otlp["retry_on_failure"]["enabled"] is True  # 429 / UNAVAILABLE are retried
    assert set(lb["resolver"]) == {"static"}  # exactly one resolver
    hosts = lb["resolver"]["static"]["hostnames"]
    assert len(hosts) >= 2 and len(set(hosts)) == len(hosts)
    port = _default(serve, "grpc_port")
    assert all(h.rsplit(":", 1)[1] == str(port) for h in hosts)
    traces = cfg["service"]["pipelines"]["traces"]
    assert "loadbalancing" in traces["exporters"] and "otlp" in traces["receivers"]
    for kind in ("receivers", "processors", "exporters"):  # everything a pipeline names is defined
        for name in traces.get(kind, []):
            assert name in cfg[kind], (kind, name)
    assert "batch" in traces["processors"]


def test_readme_recipe_matches_the_config_file():
    readme = (ROOT / "README.md").read_text()
    assert "schemas/collector/loadbalancing-sidecars.yaml" in readme
    blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", readme, re.S)]
    shown = [b for b in blocks if isinstance(b, dict) and "loadbalancing" in (b.get("exporters") or {})]
    assert shown, "the README shows the loadbalancing exporter"
    full = yaml.safe_load(CONFIG.read_text())["exporters"]["loadbalancing"]
    for b in shown:
        lb = b["exporters"]["loadbalancing"]
        assert lb["routing_key"] == full["routing_key"]
        assert lb["resolver"]["static"]["hostnames"] == full["resolver"]["static"]["hostnames"]
        assert lb["protocol"]["otlp"]["headers"] == full["protocol"]["otlp"]["headers"]
