"""Records of one LLM call made by several instrumentations: ``duplicate_clusters``.

Two records are one call when they carry the same ``gen_ai.response.id``; otherwise when they
have compatible models, identical (total input, output) token counts, overlapping time and
*different* recorders (instrumentation scopes; a raw-payload record is a recorder of its own
even in its parent's scope: ``recorder``; two identical parallel calls from one instrumentation
are two calls, not one), within one service or within one trace (an app's LLM span and its
gateway's span for the same call). Two records that both carry a response id are decided by
the id alone, except a raw payload's (its id is the provider's, and its parent's record may carry
the gateway's own: LiteLLM answers an Anthropic ``msg_`` with ``chatcmpl-<uuid>``). A record
marked ``within`` the nearest LLM-call span above it (the engine's nesting check: same scope,
same token counts, compatible models) is one call with that span (Google ADK writes a call_llm
wrapper and its generate_content span in one scope). Clusters are the transitive closure of
those pairs.

"Overlapping" is the sweep's rule: with the records of one token shape sorted by
(start_ns, ref), an earlier record ``a`` and a later ``c`` overlap when ``a.end_ns >= c.start_ns``.

The sweep is O(n log n) in the number of records whatever their token shapes and times (a
million calls at one instant with one token shape included). It never compares a new record
with every active one; it keeps, per (model, carries a response id) bucket, the active
records in *clumps* already known to be one cluster, each summarised by its latest end and
the latest end among its other scopes (enough to answer "does this clump hold an active
record of another scope?"):

- a record of scope ``s`` joins every active record of another scope, so after it every
  such clump and single record in the bucket is one clump: at most one mixed-scope clump
  survives a visit;
- single records (and clumps whose only active records share one scope) wait in a list per
  scope; a record of that same scope skips the list in O(1), a record of another scope
  empties it (each record is dropped or joined once);
- records are dropped once their end is before the sweep's start; a bucket with nothing
  left active is dropped whole.

Per record it visits the live buckets of compatible models, so the cost is
O(n log n + n * m), m the number of distinct model names sharing a token shape and active at
the same time (one or two in practice; model names are compared case-insensitively, by
prefix, or by their last path segment, a relation that is not transitive and so cannot be
keyed).
"""

from __future__ import annotations

from collections import defaultdict
from itertools import groupby
from operator import itemgetter
from typing import Iterable

from auditor.model import LlmCall
from auditor.rawpayload import SOURCE as RAW_SOURCE
from auditor.spill import ExternalSort

_NEVER = -(1 << 200)  # an end before any start: "no record of a second scope"
_WILD = ""  # the model class of a record without a model: compatible with every model


def recorder(c: LlmCall) -> tuple[str, bool]:
    """Who recorded a call: its scope, and whether from the provider's raw payload. LiteLLM's
    ``raw_gen_ai_request`` shares the scope of its ``litellm_request`` parent, yet it is a
    second record of the parent's call, not a second identical call."""
    return (c.scope, c.usage.source == RAW_SOURCE)


def models_compatible(a: str | None, b: str | None) -> bool:
    """Whether two records' model names may name the same model (provider prefixes, dated aliases)."""
    if not a or not b:
        return True
    a, b = a.lower(), b.lower()
    return a == b or a.startswith(b) or b.startswith(a) or a.split("/")[-1] == b.split("/")[-1]


class _UnionFind:
    __slots__ = ("p",)

    def __init__(self) -> None:
        self.p: dict = {}

    def find(self, x):
        p = self.p
        root = x
        while True:
            up = p.get(root, root)
            if up == root:
                break
            root = up
        while x != root:
            up = p[x]
            p[x] = root
            x = up
        return root

    def union(self, a, b) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.p[rb] = ra


class _Clump:
    """Records of one bucket already known to be one cluster: a representative, the latest
    end (``e1``, at scope ``s1``) and the latest end among the other scopes (``e2``)."""

    __slots__ = ("rep", "e1", "s1", "e2")

    def __init__(self, rep, e1: int, s1, e2: int) -> None:
        self.rep, self.e1, self.s1, self.e2 = rep, e1, s1, e2


class _Bucket:
    """Active records of one model class and one response-id flag, within one token shape."""

    __slots__ = ("mixed", "single", "max_end")

    def __init__(self) -> None:
        self.mixed: list[_Clump] = []  # clumps that may hold active records of two scopes
        self.single: dict = {}  # scope -> clumps whose only active records have that scope
        self.max_end = _NEVER

    def join(self, t: int, scope, ref, uf: _UnionFind) -> _Clump | None:
        """Union ``ref`` (starting at ``t``, of ``scope``) with every active record of another
        scope here; return the clump they now form (None when there was none)."""
        joined: list[_Clump] = []
        mixed = self.mixed
        if mixed:
            self.mixed = []
            for k in mixed:
                if k.e1 < t:
                    continue  # nothing in it is active any more
                if k.e2 < t:
                    self.single.setdefault(k.s1, []).append(k)  # one active scope left
                else:
                    joined.append(k)  # two active scopes: one of them is not ``scope``
        single = self.single
        if len(single) > 1 or (single and scope not in single):
            for s in [s for s in single if s != scope]:
                for k in single.pop(s):
                    if k.e1 >= t:
                        joined.append(k)
        if not joined:
            return None
        e1, s1 = _NEVER, None
        for k in joined:
            uf.union(ref, k.rep)
            if k.e1 > e1:
                e1, s1 = k.e1, k.s1
        e2 = _NEVER
        for k in joined:
            e = k.e1 if k.s1 != s1 else k.e2
            if e > e2:
                e2 = e
        clump = _Clump(ref, e1, s1, e2)
        self.mixed.append(clump)
        return clump

    def add(self, end: int, scope, ref, clump: _Clump | None) -> None:
        """Insert a record; ``clump`` is the clump it just formed in this bucket, if any."""
        if end > self.max_end:
            self.max_end = end
        if clump is None:
            self.single.setdefault(scope, []).append(_Clump(ref, end, scope, _NEVER))
        elif scope == clump.s1:
            if end > clump.e1:
                clump.e1 = end
        elif end > clump.e1:
            clump.e2, clump.e1, clump.s1 = clump.e1, end, scope
        elif end > clump.e2:
            clump.e2 = end


def _sweep(group: list[tuple], uf: _UnionFind, compat: dict) -> None:
    """Union the overlapping, compatible records of one token shape.

    ``group`` holds (start_ns, ref, end_ns, scope, model class, has response id) tuples.
    """
    group.sort(key=lambda r: (r[0], r[1]))
    _sweep_sorted(group, uf, compat)


def _sweep_sorted(group: Iterable[tuple], uf: _UnionFind, compat: dict) -> None:
    """``_sweep`` over rows already in (start_ns, ref) order, read once."""
    buckets: dict[tuple[str, bool], _Bucket] = {}
    for t, ref, end, scope, model, rid in group:
        own_key = (model, rid)
        own_clump = None
        dead = None
        for key, bucket in buckets.items():
            if bucket.max_end < t:
                (dead := dead or []).append(key)
                continue
            if rid and key[1]:
                continue  # both identified: only the id decides
            m = key[0]
            ok = compat.get((m, model))
            if ok is None:
                ok = compat[(m, model)] = models_compatible(m, model)
            if not ok:
                continue
            clump = bucket.join(t, scope, ref, uf)
            if key == own_key:
                own_clump = clump
        if dead:
            for key in dead:
                del buckets[key]
        bucket = buckets.get(own_key)
        if bucket is None:
            bucket = buckets[own_key] = _Bucket()
        bucket.add(end, scope, ref, own_clump)


def _add(groups: dict, key, row) -> None:
    """Append ``row`` to ``groups[key]``, a list only from its second row on: most keys (a
    trace and a token shape) hold one record, and a million one-item lists are most of the
    memory this function would otherwise hold."""
    g = groups.get(key)
    if g is None:
        groups[key] = row
    elif type(g) is list:
        g.append(row)
    else:
        groups[key] = [g, row]


class _HeldPairs:
    """Response ids and service-wide shapes held in memory (the audit holds the calls anyway)."""

    def __init__(self) -> None:
        self.first_of_rid: dict[str, tuple[str, str]] = {}
        self.by_service: dict[tuple, object] = {}

    def rid(self, rid: str, ref: tuple[str, str], uf: _UnionFind) -> None:
        first = self.first_of_rid.setdefault(rid, ref)
        if first is not ref:
            uf.union(first, ref)

    def shape(self, key: tuple, row: tuple) -> None:
        _add(self.by_service, key, row)

    def settle(self, uf: _UnionFind, compat: dict) -> None:
        self.first_of_rid = None
        _sweep_all(self.by_service, uf, compat)
        self.by_service = None


class _SpilledPairs:
    """The same pairs sorted on disk (``check --stream``: memory stays flat), then read once:
    records of one response id side by side, each service-wide shape in sweep order."""

    def __init__(self) -> None:
        self.rids = ExternalSort(itemgetter(0))
        self.shapes = ExternalSort(_shape_order)

    def rid(self, rid: str, ref: tuple[str, str], uf: _UnionFind) -> None:
        self.rids.add((rid, ref))

    def shape(self, key: tuple, row: tuple) -> None:
        self.shapes.add((key, row))

    def settle(self, uf: _UnionFind, compat: dict) -> None:
        for _rid, same in groupby(self.rids.result(), key=itemgetter(0)):
            first = next(same)[1]
            for _, ref in same:
                uf.union(first, ref)
        for _key, rows in groupby(self.shapes.result(), key=itemgetter(0)):
            _sweep_sorted((row for _, row in rows), uf, compat)


def _shape_order(item: tuple) -> tuple:
    key, row = item
    return (key, row[0], row[1])


def duplicate_clusters(calls: Iterable[LlmCall], ordered: bool = False, spill: bool = False) -> list[list[LlmCall]]:
    """Clusters (each sorted by ref, two records or more) of records of one LLM call.

    Records are visited in ref order (``ordered``: they come so, as ``rollup`` passes them,
    and are then read twice, never held: ``check --stream`` reads them from disk), a trace at
    a time: the pairs only one trace can hold (same-trace shapes, ``within``, a span id
    written twice) are settled when its trace ends. Response ids and service-wide shapes span
    traces: held in memory, or with ``spill`` sorted on disk."""
    if not ordered or iter(calls) is calls:
        calls = list(calls)
    uf = _UnionFind()
    compat: dict = {}
    pairs = _SpilledPairs() if spill else _HeldPairs()
    lowered: dict[str, str] = {}  # model name -> its lower case, one string per distinct model
    repeated: set[tuple[str, str]] = set()  # refs of two records (a span id written twice): one call
    trace_id = prev = None
    in_trace: dict[tuple, object] = {}  # this trace's shapes
    refs: set[tuple[str, str]] = set()  # this trace's refs
    nested: list[tuple[tuple[str, str], tuple[str, str]]] = []  # this trace's (within, ref)

    def end_trace() -> None:
        _sweep_all(in_trace, uf, compat)
        for outer, ref in nested:
            if outer in refs:
                uf.union(outer, ref)
        in_trace.clear()
        refs.clear()
        nested.clear()

    for c in (calls if ordered else sorted(calls, key=_ref)):
        if c.trace_id != trace_id:
            end_trace()
            trace_id = c.trace_id
        ref = (c.trace_id, c.span_id)
        if ref == prev:
            repeated.add(ref)
        prev = ref
        refs.add(ref)
        rid = c.response_id
        if rid:
            pairs.rid(rid, ref, uf)
        if c.within is not None:
            nested.append(((c.trace_id, c.within), ref))
        u = c.usage
        tin, out = u.token_tuple()
        if tin or out:
            # A raw payload's id is the provider's; its parent's record may carry the gateway's own
            # (LiteLLM writes chatcmpl-<uuid> for an Anthropic msg_ id), so the shape decides.
            rec = recorder(c)
            model = c.model or _WILD
            low = lowered.get(model)
            if low is None:
                low = lowered[model] = model.lower()
            row = (c.start_ns, ref, c.end_ns, rec, low, bool(rid) and not rec[1])
            pairs.shape((c.service, tin, out), row)
            _add(in_trace, (tin, out), row)
    end_trace()
    lowered = None
    pairs.settle(uf, compat)
    # Only records some union touched (or sharing a ref) can share a cluster: every other is alone.
    parent = uf.p
    touched = repeated
    touched.update(parent)
    touched.update(parent.values())
    clusters: dict = defaultdict(list)
    for c in calls:
        ref = (c.trace_id, c.span_id)
        if ref in touched:
            clusters[uf.find(ref)].append(c)
    return [sorted(v, key=lambda c: c.ref) for v in clusters.values() if len(v) > 1]


def _ref(c: LlmCall) -> tuple[str, str]:
    return (c.trace_id, c.span_id)


def _sweep_all(groups: dict, uf: _UnionFind, compat: dict) -> None:
    for group in groups.values():
        if type(group) is not list:
            continue  # one record: nothing to pair
        if all(r[5] for r in group):
            continue  # every record identified: the ids alone decide
        _sweep(group, uf, compat)
