"""Naming and classifying a hop so boundaries stay low-cardinality and actionable."""

from __future__ import annotations

from functools import lru_cache

import re

from auditor.model import SPAN_KIND_CONSUMER, SPAN_KIND_PRODUCER, Boundary, BoundaryClass, Endpoint, Span

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# Tokens are split on separators that ids sit between in span names and routes; '-', '_'
# and '.' are kept inside tokens so model names (gpt-4o, claude-3-5-sonnet-20241022) survive.
_TOKEN = re.compile(r"[^\s/=?&:,;#@()\[\]{}'\"|]+")
_HEX = re.compile(r"(?=.*\d)[0-9a-fA-F]{12,}")
_ALNUM_RUN = re.compile(r"[A-Za-z0-9]{16,}")


def _token(m: re.Match) -> str:
    t = m.group(0)
    if t.isdigit():
        return "{n}"
    if _HEX.fullmatch(t):
        return "{id}"
    for run in _ALNUM_RUN.findall(t):
        if not run.isdigit() and not run.isalpha():
            return "{id}"
    return t


@lru_cache(maxsize=65_536)  # span names repeat by the million; the regexes ran per finding
def normalise_name(name: str) -> str:
    name = _UUID.sub("{uuid}", name)
    return _TOKEN.sub(_token, name)[:200]


def endpoint(span: Span) -> Endpoint:
    return _endpoint(span.service, span.scope, normalise_name(span.name))


@lru_cache(maxsize=65_536)  # one object per place: a finding holds one, by the hundred thousand
def _endpoint(service: str, scope: str, name: str) -> Endpoint:
    return Endpoint(service, scope, name)


def classify(parent: Span, child: Span) -> BoundaryClass:
    if parent.kind == SPAN_KIND_PRODUCER and child.kind == SPAN_KIND_CONSUMER:
        return BoundaryClass.MESSAGING  # the context crossed a queue in the message's headers
    if parent.service != child.service or child.remote_parent:
        return BoundaryClass.NETWORK
    if parent.scope != child.scope:
        return BoundaryClass.LIBRARY
    return BoundaryClass.IN_PROCESS


def boundary(parent: Span, child: Span) -> Boundary:
    return Boundary(endpoint(parent), endpoint(child), classify(parent, child))


FIX_HINTS = {
    BoundaryClass.NETWORK: (
        "Propagate the key across the service hop: send it as W3C baggage (OTEL_PROPAGATORS="
        "tracecontext,baggage on both sides), and in the receiving service extract baggage and copy it "
        "onto spans (opentelemetry-processor-baggage's BaggageSpanProcessor), or forward it as the "
        "header / metadata the gateway reads."
    ),
    BoundaryClass.LIBRARY: (
        "The hand-off between two instrumentations drops it: pass the attribution metadata into the "
        "client or framework call (metadata=, extra_body, config={'metadata': ...}, the gateway's "
        "headers), or set it in the context the child instrumentation reads (association properties, "
        "propagate_attributes, using_metadata)."
    ),
    BoundaryClass.IN_PROCESS: (
        "Lost inside one library: code that starts spans without copying the attributes (set them on "
        "every span, or via a SpanProcessor that copies them from baggage/context), or a thread pool or "
        "executor that does not copy contextvars (contextvars.copy_context().run, or "
        "opentelemetry-instrumentation-threading)."
    ),
    BoundaryClass.MESSAGING: (
        "Lost across a queue (producer -> consumer): propagate the context into the message headers "
        "(the Celery task headers, Kafka / AMQP / SQS message attributes) with the W3C tracecontext and "
        "baggage propagators, instrument both the producer and the consumer (opentelemetry-instrumentation-"
        "celery / -kafka-python / -pika / -botocore), and on the consumer copy the extracted baggage onto its "
        "spans (BaggageSpanProcessor) or send the key in the message itself and set it on the consumer's span."
    ),
}


def fix_hint(b: Boundary) -> str:
    return FIX_HINTS[b.cls]
