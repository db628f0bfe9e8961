"""The data every layer shares: spans in, findings and calls out.

Everything here is immutable. An AuditResult is built from *parts* that merge by
concatenation (counts, findings, LLM calls); every aggregate a report shows is derived
from those parts by ``auditor.rollup``, so merging shards and auditing the whole give the
same result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from auditor.mechanism import Mechanism

# Attribute values as decoded from OTLP: str, bool, int, float, bytes, tuple (array) or
# dict (kvlist). Kept as plain Python values; a Mapping so resources can be shared.
Attributes = Mapping[str, Any]

EMPTY: Attributes = MappingProxyType({})


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.ERROR: 3, Severity.WARNING: 2, Severity.NOTE: 1}


class BoundaryClass(str, Enum):
    """Where context must cross at a leaking hop; decides the fix."""

    NETWORK = "network"
    LIBRARY = "library"
    IN_PROCESS = "in-process"
    MESSAGING = "messaging"  # a producer -> consumer hop (a parent-child PRODUCER -> CONSUMER edge, or a span link)


# OTLP Span.flags bits: 0x100 "has-is-remote known", 0x200 "parent is remote".
FLAG_REMOTE_KNOWN = 0x100
FLAG_REMOTE_PARENT = 0x200


@dataclass(frozen=True, slots=True)
class Span:
    """One decoded span, with only the attributes the audit needs (a projection)."""

    trace_id: str  # 32 lowercase hex
    span_id: str  # 16 lowercase hex
    parent_span_id: str  # "" for a root
    name: str
    service: str
    scope: str
    kind: int
    start_ns: int
    end_ns: int
    flags: int
    attributes: Attributes
    resource: Attributes = field(default_factory=lambda: EMPTY)
    # A log record read as a span-like record (e.g. Claude Code's api_request event): having
    # no parent says nothing about lost context.
    is_log_record: bool = False
    # Span links as (trace id, span id), validated like ids; at most MAX_LINKS kept. Rare: ()
    # for almost every span. ``links_dropped``: links whose ids were unusable, or over the cap.
    links: tuple[tuple[str, str], ...] = ()
    links_dropped: int = 0

    @property
    def remote_parent(self) -> bool:
        return (self.flags & (FLAG_REMOTE_KNOWN | FLAG_REMOTE_PARENT)) == (
            FLAG_REMOTE_KNOWN | FLAG_REMOTE_PARENT
        )

    def identity(self) -> tuple:
        """What makes two deliveries of a span the same span (OTLP is at-least-once)."""
        return (self.parent_span_id, self.name, self.start_ns, self.end_ns, self.service, self.scope)

    def __reduce__(self):
        """Picklable (a cluster ships spans between processes): read-only mappings travel as dicts."""
        a, r = self.attributes, self.resource
        return (_span, (self.trace_id, self.span_id, self.parent_span_id, self.name, self.service, self.scope,
                        self.kind, self.start_ns, self.end_ns, self.flags,
                        a if isinstance(a, dict) else dict(a), r if isinstance(r, dict) else dict(r), self.is_log_record,
                        self.links, self.links_dropped))


def _span(*fields) -> Span:
    span = Span(*fields)
    if not span.resource:
        object.__setattr__(span, "resource", EMPTY)
    return span


MAX_LINKS = 128  # the OTel SDK's default link count limit; more on one span are dropped and counted


@dataclass(frozen=True, slots=True)
class Rejected:
    """A span that could not be used (e.g. an empty id); the rest of its batch is kept.

    ``trace_id`` is its trace's id when that was usable: the shard of that trace counts the
    rejection (``Shard.keeps``), so a decoder that skips other shards' spans may skip their
    rejections too. ``order`` places it among its batch's rejections as the whole input would
    list them (document, resource, scope and span index), so workers that each saw some of
    them can tell which came first."""

    where: str
    reason: str
    trace_id: str | None = field(default=None, compare=False)
    order: tuple[int, ...] = field(default=(), compare=False)


@dataclass(frozen=True, slots=True, order=True)
class Endpoint:
    """One side of a boundary: ``service / scope : span name`` with ids normalised out."""

    service: str
    scope: str
    name: str

    def __str__(self) -> str:
        return f"{self.service} / {self.scope or '-'} : {self.name}"

    def to_json(self) -> dict:
        return {"service": self.service, "scope": self.scope, "name": self.name}


@dataclass(frozen=True, slots=True, order=True)
class Boundary:
    parent: Endpoint
    child: Endpoint
    cls: BoundaryClass

    def __str__(self) -> str:
        return f"{self.parent} -> {self.child}"

    def to_json(self) -> dict:
        return {"parent": self.parent.to_json(), "child": self.child.to_json(), "class": self.cls.value}


@dataclass(frozen=True, slots=True)
class Finding:
    """One violation, at one span (and, for hop findings, its parent)."""

    code: str
    severity: Severity
    trace_id: str
    span_id: str
    message: str
    key: str | None = None
    parent_span_id: str | None = None
    boundary: Boundary | None = None
    endpoint: Endpoint | None = None  # where the span sits, for findings without a hop
    parent_value: Any = None
    child_value: Any = None
    spans_affected: int = 0
    # Span ids of the LLM calls below a leak that it leaves without the key.
    llm_calls_affected: tuple[str, ...] = ()
    # Source location from OTel code attributes (code.filepath / lineno / function), if any.
    code_location: tuple[str, int | None, str | None] | None = None
    # What dropped the context (leaks, headless calls), from the trace's own spans.
    mechanism: "Mechanism | None" = None

    def sort_key(self) -> tuple:
        return (self.trace_id, self.span_id, self.code, self.key or "", self.parent_span_id or "")


@dataclass(frozen=True, slots=True)
class Usage:
    """Canonical token counts of one LLM call. ``input`` is UNCACHED input only."""

    input: int = 0
    cache_read: int = 0
    cache_write_5m: int = 0
    cache_write_1h: int = 0
    cache_write: int = 0  # cache writes whose duration the source does not say
    output: int = 0
    reasoning: int = 0  # included in output
    convention: str = "none"  # how the source counted input: including / excluding / none
    source: str = ""  # which attribute family the counts came from
    basis: str = ""  # why that convention was decided (dialect, evidence, family default)
    ambiguous: bool = False  # the evidence allows both conventions (COST002)
    total: int = 0  # a reported total, kept when input/output are not split
    problem: str = ""  # counts no call can have (negative, non-finite, absurdly large): unpriced, GENAI004

    @property
    def total_input(self) -> int:
        return self.input + self.cache_read + self.cache_write_total

    @property
    def cache_write_total(self) -> int:
        return self.cache_write + self.cache_write_5m + self.cache_write_1h

    @property
    def detail(self) -> int:
        """How much the record says: more token types known means a better record to price."""
        return sum(
            1
            for v in (self.cache_read, self.cache_write_total, self.reasoning, self.cache_write_5m or self.cache_write_1h)
            if v
        ) * 2 + (1 if self.convention != "none" else 0)

    def token_tuple(self) -> tuple[int, int]:
        return (self.total_input, self.output)


@dataclass(frozen=True, slots=True)
class LlmCall:
    """One cost-bearing span: the fact table every cost and attribution figure derives from."""

    trace_id: str
    span_id: str
    service: str
    scope: str
    name: str
    start_ns: int
    end_ns: int
    provider: str | None
    model: str | None
    response_id: str | None
    usage: Usage
    # Resolved value of every schema key on this span (None when absent).
    values: Mapping[str, Any]
    cost_usd: Any = None  # decimal.Decimal, or None when unpriced
    price_note: str = ""  # how the price was found (or why not)
    tier: str | None = None
    reported_cost_usd: Any = None  # Decimal the source itself reported, kept beside our price
    # Server-side tool requests the record states, e.g. (("web_search", 2),); None: not stated
    # (only a usage object, LiteLLM's or a raw payload's, says how many searches a call ran).
    server_tools: tuple[tuple[str, int], ...] | None = None
    # The span id of the nearest LLM-call span above this one, in its trace and scope, when that
    # span records this same call (Google ADK's call_llm wrapper over its generate_content span).
    within: str | None = None

    @property
    def ref(self) -> tuple[str, str]:
        return (self.trace_id, self.span_id)


@dataclass(frozen=True, slots=True)
class Counts:
    traces: int = 0
    spans: int = 0
    rejected_spans: int = 0
    rejected_links: int = 0  # span links dropped at ingest (unusable ids, or over MAX_LINKS on a span)

    def __add__(self, other: "Counts") -> "Counts":
        return Counts(
            self.traces + other.traces,
            self.spans + other.spans,
            self.rejected_spans + other.rejected_spans,
            self.rejected_links + other.rejected_links,
        )


@dataclass(frozen=True, slots=True)
class RunInfo:
    """What was read and with which schema: run metadata, not part of result equality."""

    inputs: tuple[str, ...] = ()
    schema: str = ""
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class Headless:
    """An LLM call that is the root of its own trace. Whether that lost a request's context
    (TRACE004) or is a job's call (TRACE006) depends on whether its service ever serves a
    request: a fact of the whole input, so it is judged in ``finish``."""

    trace_id: str
    span_id: str
    service: str
    name: str
    endpoint: Endpoint
    code_location: tuple[str, int | None, str | None] | None = None
    mechanism: "Mechanism | None" = None
    # The agent or tool span that roots the trace when the call sits below one (an agent run in a
    # thread pool starts the trace, not its LLM call); None when the call itself is the root.
    root: str | None = None


SPAN_KIND_SERVER, SPAN_KIND_PRODUCER, SPAN_KIND_CONSUMER = 2, 4, 5


@dataclass(frozen=True, slots=True)
class LinkAnchor:
    """A span another trace may link to (a PRODUCER span): where it sits and the keys it carries.

    Per-trace work cannot see the trace a link points into, so anchors travel with the parts
    and links are resolved in ``finish``: shards, ``merge`` and the sidecar agree."""

    trace_id: str
    span_id: str
    endpoint: Endpoint
    values: tuple[tuple[str, Any], ...]  # (key, value) for each schema key the span carries


@dataclass(frozen=True, slots=True)
class LinkClaim:
    """A consumer span (a root, or of kind CONSUMER) with span links, whose LLM calls below lack
    ``key`` and whose own ancestry never had it: a messaging leak if a linked producer carried
    it, a never-minted call otherwise. ``never``: the ATTR002 findings the engine held back for
    ``finish`` to emit, or not, once the links are resolved."""

    trace_id: str
    span_id: str
    endpoint: Endpoint
    key: str
    targets: tuple[tuple[str, str], ...]  # linked (trace id, span id), sorted
    spans_affected: int
    calls: tuple[str, ...]  # span ids of the LLM calls below that lack the key, sorted
    never: tuple["Finding", ...] = ()

SEVERITY_OFF = "off"
FAIL_LEVELS = {"error": 3, "warning": 2, "note": 1, "never": 99}


@dataclass(frozen=True, slots=True)
class Policy:
    """The schema's judgement: severities and the gate. It travels with the parts (and their
    JSON), so a merged or live result judges exactly as the whole-file audit did."""

    severity: Mapping[str, str] = field(default_factory=dict)  # code -> error | warning | note | off
    key_severity: Mapping[str, str] = field(default_factory=dict)  # key -> its ``severity:`` for keyed codes
    fail_on: str = "error"  # error | warning | note | never
    max_unattributed_pct: Mapping[str, float] = field(default_factory=dict)
    # No span read at all fails the gate (a broken export must not go green in CI) unless allowed.
    allow_empty: bool = False

    def severity_of(self, code: str, default: Severity, key: str | None = None, keyed: bool = False) -> Severity | None:
        """The effective severity of a finding, or None when its code is off."""
        override = self.severity.get(code)
        if override == SEVERITY_OFF:
            return None
        if override:
            return Severity(override)
        if keyed and key is not None and key in self.key_severity:
            return Severity(self.key_severity[key])
        return default

    def fails(self, severity: Severity) -> bool:
        return severity.rank >= FAIL_LEVELS[self.fail_on]

    def overridden(
        self, fail_on: str | None = None, max_unattributed_pct: Mapping[str, float] | None = None, allow_empty: bool = False,
    ) -> "Policy":
        """Command-line flags win over the schema's gate (and travel on in the result)."""
        pct = dict(self.max_unattributed_pct)
        pct.update(max_unattributed_pct or {})
        return Policy(self.severity, self.key_severity, fail_on or self.fail_on, dict(sorted(pct.items())),
                      self.allow_empty or allow_empty)


@dataclass(frozen=True, slots=True)
class Parts:
    """The mergeable facts of an audit. Merging is concatenation; order is normalised."""

    counts: Counts = Counts()
    findings: tuple[Finding, ...] = ()
    calls: tuple[LlmCall, ...] = ()
    keys: tuple[str, ...] = ()  # schema keys, in schema order
    required_keys: tuple[str, ...] = ()
    # One example trace per leaking boundary (the smallest); merged by auditor.examples.pick.
    examples: tuple["ExampleTrace", ...] = ()
    policy: Policy = Policy()
    dialects: tuple[tuple[str, int], ...] = ()  # dialect -> traces that speak it (detection), sorted
    # Every key the plan may ask for, in its order: ``keys`` is kept sorted by it, so merging
    # the key sets of shards that detected different dialects is order-free.
    key_order: tuple[str, ...] = ()
    # Spans that look like LLM calls (token counts, an LLM span kind) but the schema selects
    # none as one: how many, and the smallest (trace id, span id) as an example (GENAI005).
    llm_like_unread: int = 0
    llm_like_example: tuple[str, str] | None = None
    headless: tuple[Headless, ...] = ()  # LLM calls that are trace roots (TRACE004 / TRACE006)
    serving: tuple[str, ...] = ()  # services with a SERVER or CONSUMER span, sorted
    claims: tuple[LinkClaim, ...] = ()  # consumers that link elsewhere and lack a key (resolved in finish)
    anchors: tuple[LinkAnchor, ...] = ()  # producer spans links may point at


@dataclass(frozen=True, slots=True)
class ExampleSpan:
    """One span of an example trace, with its resolved attribution values, for drawing a leak."""

    span_id: str
    parent_span_id: str  # "" for a root of the (possibly cut) example
    service: str
    scope: str
    name: str
    llm: bool
    values: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ExampleTrace:
    boundary: Boundary
    trace_id: str
    total_spans: int  # size of the whole trace (the rank); spans may be cut to the leak
    hops: tuple[tuple[str, str, tuple[str, ...]], ...]  # (parent id, child id, keys lost there)
    spans: tuple[ExampleSpan, ...]  # parents before children


@dataclass(frozen=True, slots=True)
class BoundaryStats:
    boundary: Boundary
    keys: tuple[str, ...]
    traces: int
    spans_affected: int
    llm_calls_affected: int
    unattributed_cost_usd: Any  # Decimal
    example_trace_ids: tuple[str, ...]
    fix: str
    # (mechanism, confidence, traces it explains here), most traces first: the root cause(s).
    mechanisms: tuple[tuple[str, str, int], ...] = ()


SHARE_SPEND, SHARE_CALLS = "spend", "calls"


@dataclass(frozen=True, slots=True)
class KeyStats:
    """One key's attribution over the unique calls that are asked for it.

    ``share_pct`` is computed once, here, and every format and the gate read it: the share of
    priced spend lacking the key (basis ``spend``), or, only when no call is priced, the share
    of calls (basis ``calls``); None when there are no calls.
    """

    key: str
    llm_calls: int
    llm_calls_missing: int
    cost_usd: Any  # Decimal: priced spend of the calls asked for this key
    unattributed_usd: Any  # Decimal: priced spend of calls lacking the key
    unattributed_unpriced_calls: int
    share_pct: float | None = None
    share_basis: str | None = None  # SHARE_SPEND | SHARE_CALLS | None


@dataclass(frozen=True, slots=True)
class CodeCost:
    """The LLM spend that findings of one code concern (each call counted once per code)."""

    calls: int
    cost_usd: Any  # Decimal
    unpriced_calls: int


@dataclass(frozen=True, slots=True)
class Gate:
    passed: bool
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FindingGroup:
    """Findings of one code and key at one place (normalised boundary, else endpoint), for people.

    Its ``ident`` has no trace or span id in it, so the same leak found in other traces
    tomorrow is the same group: it is what a baseline matches on (``auditor.baseline``)."""

    ident: str
    code: str
    severity: Severity
    key: str | None
    boundary: Boundary | None
    endpoint: Endpoint | None
    findings: int
    traces: int
    llm_calls: int  # unique LLM calls the group's findings concern (at or below them)
    cost_usd: Any  # Decimal: priced spend of those calls
    unpriced_calls: int
    example_trace_ids: tuple[str, ...]
    example: Finding  # the first finding (by trace, span): its message and code location

    @property
    def where(self) -> str:
        if self.boundary is not None:
            return f"{self.boundary} [{self.boundary.cls.value}]"
        return "" if self.endpoint is None else str(self.endpoint)


NEW, UNCHANGED, UPDATED, ABSENT = "new", "unchanged", "updated", "absent"  # SARIF's baselineState values


@dataclass(frozen=True, slots=True)
class KeyDelta:
    """One key's unattributed share before (the baseline) and now; ``rise`` in percentage
    points, None when the two are not comparable (a new key, or one basis by spend and the
    other by calls because nothing was priced)."""

    key: str
    before_pct: float | None
    after_pct: float | None
    basis: str | None
    before_usd: Any  # Decimal
    after_usd: Any  # Decimal
    rise: float | None


@dataclass(frozen=True, slots=True)
class BaselineDiff:
    """This run against an earlier report: which groups are new, known, changed or gone."""

    source: str  # the baseline report's path
    tolerance_pct: float
    states: Mapping[str, str]  # group ident -> NEW | UNCHANGED | UPDATED (every group of this run)
    absent: tuple[FindingGroup, ...]  # groups of the baseline that this run no longer has
    keys: tuple[KeyDelta, ...]
    new_leaks: tuple[BoundaryStats, ...]
    fixed_leaks: tuple[BoundaryStats, ...]
    cost_before: Any  # Decimal: total priced spend of the baseline
    cost_after: Any

    def state(self, group: FindingGroup) -> str:
        return self.states.get(group.ident, NEW)

    def count(self, state: str) -> int:
        return len(self.absent) if state == ABSENT else sum(1 for s in self.states.values() if s == state)


@dataclass(frozen=True, slots=True)
class AuditResult:
    """Parts plus everything derived from them. Build with ``auditor.rollup.finish``."""

    parts: Parts
    run: RunInfo
    findings: tuple[Finding, ...]  # parts.findings plus derived ones, sorted
    calls: tuple[LlmCall, ...]  # unique calls (duplicates folded), sorted by ref
    duplicates: Mapping[tuple[str, str], tuple[str, str]]  # record ref -> canonical call ref
    boundaries: tuple[BoundaryStats, ...]
    keys: tuple[KeyStats, ...]
    finding_counts: Mapping[str, int]
    total_cost_usd: Any
    unpriced_calls: int
    cost_by_code: Mapping[str, CodeCost]
    gate: Gate
    groups: tuple[FindingGroup, ...] = ()  # findings grouped for people, worst first
    baseline: BaselineDiff | None = None  # set when judged against an earlier report (--baseline)

    @property
    def counts(self) -> Counts:
        return self.parts.counts

    @property
    def policy(self) -> Policy:
        return self.parts.policy

    def key(self, name: str) -> KeyStats | None:
        for k in self.keys:
            if k.key == name:
                return k
        return None


def _fast_init(cls: type) -> type:
    """Give a frozen, slotted record a faster ``__init__`` with the same signature.

    A frozen dataclass sets every field through ``object.__setattr__`` looked up per field;
    each slot's own descriptor does the same store several times faster. Spans, findings and
    calls are made by the million, so this is worth a few lines; immutability is unchanged.
    """
    from dataclasses import MISSING, fields

    if hasattr(cls, "__post_init__"):
        return cls
    ns: dict[str, Any] = {"_MISSING": MISSING}
    params, body = [], []
    for f in fields(cls):
        n = f.name
        ns[f"_set_{n}"] = cls.__dict__[n].__set__
        if f.default is not MISSING:
            ns[f"_d_{n}"] = f.default
            params.append(f"{n}=_d_{n}")
        elif f.default_factory is not MISSING:
            ns[f"_f_{n}"] = f.default_factory
            params.append(f"{n}=_MISSING")
            body.append(f"    if {n} is _MISSING: {n} = _f_{n}()")
        else:
            params.append(n)
        body.append(f"    _set_{n}(self, {n})")
    exec(f"def __init__(self, {', '.join(params)}):\n" + "\n".join(body or ["    pass"]), ns)
    init = ns["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__doc__ = cls.__init__.__doc__
    cls.__init__ = init
    return cls


for _cls in (Span, Finding, Usage, LlmCall):
    _fast_init(_cls)


def fast_pickle(cls: type) -> type:
    """Pickle a frozen, slotted record as its field values, rebuilt through the slots.

    The dataclass default (``__getstate__`` / ``__setstate__``) calls ``fields()`` on every
    record it restores; ``check --stream`` reads every finding and call record back from disk
    several times (``auditor.spill``), and that lookup was most of the reading. Rebuilding
    sets the same slots to the same values, so the record is equal and runs no code of its own.
    """
    from dataclasses import fields
    from operator import attrgetter

    names = tuple(f.name for f in fields(cls))
    get = attrgetter(*names) if len(names) > 1 else (lambda o: (getattr(o, names[0]),))
    _SETTERS[cls] = tuple(cls.__dict__[n].__set__ for n in names)
    cls.__reduce__ = lambda self: (_rebuild, (cls, get(self)))
    return cls


def _rebuild(cls: type, values: tuple):
    new = object.__new__(cls)
    for put, v in zip(_SETTERS[cls], values):
        put(new, v)
    return new


_SETTERS: dict[type, tuple] = {}

for _cls in (Span, Finding, Usage, LlmCall, Endpoint, Boundary):
    fast_pickle(_cls)



def evolve(obj, **changes):
    """``dataclasses.replace`` for the records above (frozen, slotted, no ``__post_init__``)
    at half its cost: it is called per finding and per call (code locations, prices)."""
    fn = _EVOLVE.get(type(obj))
    if fn is None:
        fn = _EVOLVE[type(obj)] = _evolver(type(obj))
    return fn(obj, **changes)


def _evolver(cls: type):
    """A function copying a ``cls`` with some fields changed, each through its slot."""
    from dataclasses import fields

    ns: dict[str, Any] = {"_KEEP": object(), "_new": object.__new__, "_cls": cls}
    names = [f.name for f in fields(cls)]
    body = ["    new = _new(_cls)"]
    for n in names:
        ns[f"_get_{n}"], ns[f"_set_{n}"] = cls.__dict__[n].__get__, cls.__dict__[n].__set__
        body.append(f"    _set_{n}(new, _get_{n}(obj) if {n} is _KEEP else {n})")
    exec(f"def evolve(obj, *, {', '.join(n + '=_KEEP' for n in names)}):\n" + "\n".join(body) + "\n    return new", ns)
    return ns["evolve"]


_EVOLVE: dict[type, Any] = {}
