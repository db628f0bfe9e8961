"""Protobuf OTLP -> OTLP JSON, as the OTLP file exporter writes it (hex ids, integer enums).

protobuf's own JSON printer writes ids as base64; OTLP JSON wants hex, so ids are fixed up.
Used by sample generators and the differential tests between encodings.
"""

from __future__ import annotations

import base64

from google.protobuf.json_format import MessageToDict

_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


def to_otlp_json(msg) -> dict:
    doc = MessageToDict(msg, use_integers_for_enums=True, preserving_proto_field_name=False)
    for rs in doc.get("resourceSpans", ()):
        for ss in rs.get("scopeSpans", ()):
            for span in ss.get("spans", ()):
                _hex_ids(span)
                for link in span.get("links", ()):
                    _hex_ids(link)
    return doc


def _hex_ids(obj: dict) -> None:
    for f in _ID_FIELDS:
        if obj.get(f):
            obj[f] = base64.b64decode(obj[f]).hex()
