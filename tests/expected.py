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
            {**{k: f[k] for k in ("code", "key", "trace_id", "span_id", "parent_span_id")}, **_mechanism(f)}
            for f in doc["findings"]
        ],
    }


def _mechanism(f: dict) -> dict:
    """A leak's or headless call's mechanism: its name and confidence (the evidence is pinned by
    the mechanism samples' goldens)."""
    m = f.get("mechanism")
    return {} if m is None else {"mechanism": f"{m['name']} ({m['confidence']})"}
