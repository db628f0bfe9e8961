"""The part of a JSON report that a scenario's expected-findings file pins down exactly."""


def essentials(doc: dict) -> dict:
    s = doc["summary"]
    return {
        "summary": {
            "traces": s["traces"],
            "spans": s["spans"],
            "llm_calls": s["llm_calls"],
            "findings": s["findings"],
            "llm_calls_missing": {k: v["llm_calls_missing"] for k, v in s["keys"].items()},
            "gate_passed": s["gate"]["passed"],
        },
        "boundaries": [
            {
                "parent": b["parent"],
                "child": b["child"],
                "class": b["class"],
                "keys": b["keys"],
                "traces": b["traces"],
                "spans_affected": b["spans_affected"],
                "llm_calls_affected": b["llm_calls_affected"],
            }
            for b in doc["boundaries"]
        ],
        "findings": [
            {k: f[k] for k in ("code", "key", "trace_id", "span_id", "parent_span_id")}
            for f in doc["findings"]
        ],
    }
