"""Prometheus metrics: intake counters live here; audit figures come from the live result.

Findings by code and the unattributed cost and share per key are read from the same
AuditResult as ``/api/report`` (policy applied, duplicate records counted once), so Grafana
and the report cannot disagree. They are gauges over what the store holds *now*: a
re-audited trace replaces its findings, so they can go down.
"""

from __future__ import annotations

from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from auditor.server.alerts import key_states

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self, store_stats: Callable[[], dict], result: Callable[[], object], buffer: Callable[[], tuple[int, int, float]],
                 trend: Callable[[str], object] | None = None):
        self.registry = r = CollectorRegistry()
        self.accepted = Counter("auditor_spans_accepted", "Spans acknowledged (on disk in the spool).", ["transport"], registry=r)
        self.rejected = Counter(
            "auditor_spans_rejected", "Spans refused in a partial success (unusable ids).", ["transport"], registry=r
        )
        self.requests = Counter(
            "auditor_export_requests", "Export requests by answer.", ["transport", "outcome"], registry=r
        )
        self.latency = Histogram(
            "auditor_export_latency_seconds", "Time from request to acknowledgement (includes the spool fsync).",
            ["transport"], buckets=LATENCY_BUCKETS, registry=r,
        )
        r.register(_StoreCollector(store_stats, result, buffer, trend))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _StoreCollector:
    def __init__(self, store_stats, result, buffer, trend=None):
        self.store_stats = store_stats
        self.result = result
        self.buffer = buffer
        self.trend = trend

    def collect(self):
        buffered, nbytes, fill = self.buffer()
        g = GaugeMetricFamily("auditor_buffer_spans", "Spans accepted but not yet audited and stored.")
        g.add_metric([], buffered)
        yield g
        g = GaugeMetricFamily("auditor_buffer_bytes", "Their bytes in the queue on disk.")
        g.add_metric([], nbytes)
        yield g
        g = GaugeMetricFamily("auditor_buffer_fill_ratio",
                              "The fuller bound: buffered bytes / --max-buffered-bytes or spans / --max-buffered-spans.")
        g.add_metric([], fill)
        yield g
        s = self.store_stats()
        c = CounterMetricFamily("auditor_traces_audited", "Trace audits stored, re-audits of re-opened traces included.")
        c.add_metric([], s["audits"])
        yield c
        g = GaugeMetricFamily("auditor_traces_stored", "Distinct traces audited and stored.")
        g.add_metric([], s["traces"])
        yield g
        res = self.result()
        g = GaugeMetricFamily("auditor_findings", "Current findings by rule code (as /api/report counts them).", labels=["code"])
        for code, n in res.finding_counts.items():
            g.add_metric([code], n)
        yield g
        g = GaugeMetricFamily(
            "auditor_unattributed_cost_usd", "Priced LLM spend on calls lacking a required key (each call once).", labels=["key"]
        )
        for k in res.keys:
            g.add_metric([k.key], float(k.unattributed_usd))
        yield g
        g = GaugeMetricFamily(
            "auditor_unattributed_share_pct",
            "Share of LLM spend lacking a required key; of calls when nothing is priced (label basis).",
            labels=["key", "basis"],
        )
        for k in res.keys:
            if k.share_pct is not None:
                g.add_metric([k.key, k.share_basis], k.share_pct)
        yield g
        g = GaugeMetricFamily(
            "auditor_key_llm_cost_usd",
            "Priced LLM spend of the calls asked for a key (the share's denominator): "
            "delta(auditor_unattributed_cost_usd[1h]) / delta(auditor_key_llm_cost_usd[1h]) is the last hour's share.",
            labels=["key"],
        )
        for k in res.keys:
            g.add_metric([k.key], float(k.cost_usd))
        yield g
        g = GaugeMetricFamily("auditor_unattributed_limit_pct", "The gate's max_unattributed_pct per key.", labels=["key"])
        for key, limit in res.policy.max_unattributed_pct.items():
            g.add_metric([key], float(limit))
        yield g
        if self.trend is not None:
            g = GaugeMetricFamily(
                "auditor_unattributed_share_latest_pct",
                "Unattributed share per key in the newest minute / hour of trace time with LLM calls (the live trend's last point).",
                labels=["key", "basis", "bucket"],
            )
            for bucket in ("minute", "hour"):
                tr = self.trend(bucket)
                if tr.starts:
                    for key in tr.keys:
                        c = tr.cells.get((tr.starts[-1], key))
                        if c is not None and c.share_pct is not None:
                            g.add_metric([key, c.share_basis, bucket], c.share_pct)
            yield g
        g = GaugeMetricFamily("auditor_gate_passed", "1 when the live result passes the schema's gate, else 0.")
        g.add_metric([], 1.0 if res.gate.passed else 0.0)
        yield g
        g = GaugeMetricFamily(
            "auditor_gate_failing",
            "1 when a key fails the gate (share over its limit, or findings about it at or above fail_on); key=\"\" for findings about no key.",
            labels=["key"],
        )
        if res.counts.spans:
            for key, st in key_states(res).items():
                g.add_metric([key or ""], 1.0 if st.failing else 0.0)
        yield g
        g = GaugeMetricFamily("auditor_llm_cost_usd", "Priced LLM spend audited (each call once).")
        g.add_metric([], float(res.total_cost_usd))
        yield g
        g = GaugeMetricFamily("auditor_spans_rejected_stored", "Rejected spans counted in the report.")
        g.add_metric([], s["rejected_spans"])
        yield g
