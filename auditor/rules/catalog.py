"""Every rule code, written out (never derived), with its default severity and help.

Codes are stable and never renumbered; the registry refuses duplicates so two families
cannot claim one code.
"""

from __future__ import annotations

from dataclasses import dataclass

from auditor.model import Severity


@dataclass(frozen=True, slots=True)
class RuleInfo:
    code: str
    name: str
    family: str
    severity: Severity
    summary: str
    help: str


_RULES: dict[str, RuleInfo] = {}


def register(*rules: RuleInfo) -> None:
    for r in rules:
        if r.code in _RULES:
            raise ValueError(f"duplicate rule code {r.code}")
        _RULES[r.code] = r


def rule(code: str) -> RuleInfo:
    return _RULES[code]


def all_rules() -> tuple[RuleInfo, ...]:
    return tuple(sorted(_RULES.values(), key=lambda r: r.code))


E, W, N = Severity.ERROR, Severity.WARNING, Severity.NOTE

register(
    RuleInfo("ATTR001", "attribution-leak", "attribution", E,
             "leak: parent carries the key, child on the attribution path does not",
             "The key was on the parent span and is missing on the child, on the way to an LLM call. "
             "Every span below is unattributed. Fix the hop: propagate the context (network), pass the "
             "metadata into the client or framework (library), or copy the context into the thread or task (in-process)."),
    RuleInfo("ATTR002", "never-minted", "attribution", E,
             "never minted: an LLM call whose whole ancestry lacks the key",
             "No span above this LLM call carries the key: it was never set for this request, or the "
             "call runs outside the request's trace (see TRACE004). Set the key where the request enters."),
    RuleInfo("ATTR003", "attribution-mismatch", "attribution", E,
             "mismatch: the value changed across a hop (cross-tenant bleed)",
             "A span carries a different value than its nearest ancestor that carries the key: spend is "
             "charged to the wrong owner. Look for a shared client or a context reused across requests."),
    RuleInfo("ATTR004", "attribution-gap", "attribution", W,
             "gap: the key reappears below a leak (re-minted)",
             "The key was lost at a hop above and set again here. The spans in between are unattributed, and "
             "the re-minted value may not be the original: propagate it instead of setting it again."),
    RuleInfo("ATTR005", "attribution-bad-value", "attribution", E,
             "the value fails its JSON Schema",
             "The key is present but its value does not satisfy the schema (empty, wrong type, pattern, enum)."),
    RuleInfo("TRACE001", "orphan-span", "structure", W,
             "orphan: parent_span_id names a span absent from the trace",
             "The parent was lost, unsampled or not exported, or the context was broken. The subtree is audited on its own."),
    RuleInfo("TRACE002", "duplicate-span-id", "structure", W,
             "duplicate span id",
             "Two different spans share an id within a trace; the earliest is kept. Exact re-deliveries are folded silently."),
    RuleInfo("TRACE003", "cycle", "structure", E,
             "cycle or self-parent",
             "Parent links loop. The cycle is cut at its smallest span id so the rest can be audited."),
    RuleInfo("TRACE004", "headless-llm-call", "structure", E,
             "headless LLM call: an LLM call that is a trace root",
             "The LLM call started a trace of its own: the request's context did not reach it at all. The classic "
             "cause is a thread pool or run_in_executor that does not copy contextvars."),
    RuleInfo("TRACE005", "duplicate-llm-call", "structure", N,
             "the same LLM call recorded by several spans (counted once)",
             "Two instrumentations recorded one call (e.g. a framework's span and the client library's). "
             "It is counted and priced once; it is attributed if any record carries the key."),
    RuleInfo("GENAI001", "genai-required-attribute-missing", "genai", W,
             "required gen_ai attribute missing",
             "A gen_ai span lacks an attribute the GenAI semantic conventions require for its operation "
             "(schemas/genai-semconv.yaml), e.g. gen_ai.provider.name. Backends and pricing depend on it: set it in "
             "the instrumentation or upgrade it."),
    RuleInfo("GENAI002", "genai-renamed-attribute", "genai", N,
             "deprecated or renamed attribute name (says the new one)",
             "The span uses a gen_ai name (or enum value) the conventions renamed or removed; the message names the "
             "replacement. Moving the GenAI conventions to their own repository is not a deprecation and is not reported."),
    RuleInfo("GENAI003", "genai-wrong-type", "genai", W,
             "wrong type",
             "A gen_ai attribute has a type other than the conventions define (e.g. a token count sent as a string). "
             "Consumers that expect the defined type drop or misread it."),
    RuleInfo("GENAI004", "genai-impossible-token-counts", "genai", E,
             "impossible token counts",
             "Token counts that cannot all be true: a negative count, reasoning tokens above output tokens, or cache "
             "tokens above input tokens where the instrumentation is declared to count cache inside input. The price "
             "of such a call is not trustworthy: fix the instrumentation or its dialect declaration."),
    RuleInfo("COST001", "cost-no-price", "cost", W,
             "no price for this provider/model (call counted as unpriced, never $0)",
             "The model (or provider) is not in the pinned genai-prices data, the span names no model, or it carries "
             "no usable token counts. The call is counted as unpriced, never as $0. Add a `prices:` entry to the "
             "schema for self-hosted or negotiated models."),
    RuleInfo("COST002", "cost-ambiguous-cache-accounting", "cost", W,
             "ambiguous cache-token accounting",
             "Input tokens may or may not include the cache tokens: the attributes nominally include them, but the "
             "provider's native usage excludes them and the counts fit both readings. The finding gives both prices; "
             "declare the instrumentation's convention under `dialects.convention` in the schema."),
    RuleInfo("AGENT001", "developer-missing-key", "agents", E,
             "a developer's model calls lack a required key (team, cost center, repository)",
             "Every call from this developer's machine misses the key, so their spend cannot be charged to a team, "
             "cost center or repository. The administrator's OTEL_RESOURCE_ATTRIBUTES did not reach that machine: "
             "distribute them through managed settings. The finding gives the calls and spend affected."),
    RuleInfo("AGENT002", "session-without-user", "agents", E,
             "a session's model calls carry no user",
             "The session's calls have no user.email or account id: API-key or unauthenticated use that no developer "
             "can be charged for. Require sign-in (managed settings) or attribute the key to its owner."),
    RuleInfo("AGENT003", "reported-cost-mismatch", "agents", W,
             "the cost the tool reports disagrees with our price",
             "The record's own cost (e.g. Claude Code's cost_usd, an estimate at list price) differs from the price "
             "computed from its token counts by more than the tolerance (dialects.reported_cost_tolerance_pct, "
             "default 5%). Usually cache tokens counted at the wrong rate, or a model billed under another name."),
    RuleInfo("TOOL001", "rule-crashed", "tool", W,
             "a rule crashed on this trace",
             "An internal error while auditing this trace; the rest of the run is unaffected. Please report it."),
    RuleInfo("RECON001", "ungated-source", "reconcile", W,
             "ungated source: an api key, workspace or model with invoiced spend and no traced call",
             "The provider's usage export shows spend under this api key, workspace (project) or model, and not one "
             "traced call maps to it: a developer's direct key, a CLI tool pointed straight at the provider, or a "
             "service that bypasses the gateway. Route it through the gateway or instrument it (auditor reconcile)."),
    RuleInfo("RECON002", "token-type-drift", "reconcile", W,
             "token-type drift: the traced split of token types differs from the provider's",
             "For the traced calls, one token type (e.g. cache writes) is covered far less, or more, than the tokens "
             "overall: an instrumentation drops or mislabels cache tokens, so its costs are wrong. Check which "
             "attributes it writes and the convention it follows (auditor reconcile)."),
    RuleInfo("RECON003", "traced-exceeds-invoice", "reconcile", N,
             "traced spend exceeds the invoice for a group",
             "The traces show more spend for this day / model / key than the provider's export: calls of another "
             "organisation, a wrong model or tier on the spans, or calls counted twice (auditor reconcile)."),
)
