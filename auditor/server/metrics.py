"""Prometheus metrics: intake counters live here; audit figures are read from the store.

Audit figures (traces audited, findings by code, unattributed cost by key) are gauges over
what the store holds *now*: a re-audited trace replaces its findings, so they can go down.
"""

from __future__ import annotations

from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self, store_stats: Callable[[], dict], buffer: Callable[[], tuple[int, int]]):
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
        r.register(_StoreCollector(store_stats, buffer))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _StoreCollector:
    def __init__(self, store_stats, buffer):
        self.store_stats = store_stats
        self.buffer = buffer

    def collect(self):
        buffered, limit = self.buffer()
        g = GaugeMetricFamily("auditor_buffer_spans", "Spans accepted but not yet audited and stored.")
        g.add_metric([], buffered)
        yield g
        g = GaugeMetricFamily("auditor_buffer_fill_ratio", "Buffered spans / --max-buffered-spans.")
        g.add_metric([], buffered / limit if limit else 0.0)
        yield g
        s = self.store_stats()
        c = CounterMetricFamily("auditor_traces_audited", "Trace audits stored, re-audits of re-opened traces included.")
        c.add_metric([], s["audits"])
        yield c
        g = GaugeMetricFamily("auditor_traces_stored", "Distinct traces audited and stored.")
        g.add_metric([], s["traces"])
        yield g
        g = GaugeMetricFamily("auditor_findings", "Current findings by rule code.", labels=["code"])
        for code, n in sorted(s["findings_by_code"].items()):
            g.add_metric([code], n)
        yield g
        g = GaugeMetricFamily(
            "auditor_unattributed_cost_usd", "Priced LLM spend on calls lacking a required key.", labels=["key"]
        )
        for key, usd in sorted(s["unattributed_usd"].items()):
            g.add_metric([key], float(usd or 0))
        yield g
        g = GaugeMetricFamily("auditor_spans_rejected_stored", "Rejected spans counted in the report.")
        g.add_metric([], s["rejected_spans"])
        yield g
