"""``auditor serve --alert-webhook URL``: tell someone when the live gate turns failing, and when
it recovers.

The gate is the schema's ``gate:`` applied to the live result (``result.gate``), read per key:
a key fails when its unattributed share is over its ``max_unattributed_pct``, or when findings
about it are at or above ``fail_on``; findings about no key (e.g. a headless call's TRACE004)
fail the gate under key ``None``. "No spans yet" is not an alert. Each change of a key's state
is one JSON POST: Slack-compatible ``text`` plus structured fields (``key``, ``share_pct``,
``threshold_pct``, ``worst_boundary``, ``example_trace``, ...). At most one message per key and
state within ``window`` seconds (a flapping key is reported again once the window has passed,
if its state still differs from the last one told). Deliveries retry with exponential backoff;
failures are logged, never fatal; the last state told is kept in the data dir, so a restart
does not repeat it.

Nothing else leaves the server: the message goes only to the URL the operator gave, directly
(no proxy from the environment, no redirects followed).
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from auditor.model import SHARE_SPEND, AuditResult
from auditor.report.safe_text import inline
from auditor.result_json import usd

FAILING, PASSING = "failing", "passing"
NO_KEY = None


@dataclass(frozen=True, slots=True)
class KeyState:
    key: str | None
    failing: bool
    share_pct: float | None
    share_basis: str | None
    threshold_pct: float | None
    unattributed_usd: str | None
    reasons: tuple[str, ...]
    worst_boundary: str | None
    example_trace: str | None


def key_states(result: AuditResult) -> dict[str | None, KeyState]:
    """Every required key's part of the gate (plus ``None`` for findings about no key)."""
    policy = result.policy
    limits = policy.max_unattributed_pct
    failing_findings: dict[str | None, list] = {}
    for f in result.findings:
        if policy.fails(f.severity):
            failing_findings.setdefault(f.key, []).append(f)
    out: dict[str | None, KeyState] = {}
    for k in result.keys:
        reasons = []
        limit = limits.get(k.key)
        if limit is not None and k.share_pct is not None and k.share_pct > limit:
            what = "LLM spend" if k.share_basis == SHARE_SPEND else "LLM calls (nothing priced)"
            reasons.append(f"{k.share_pct:.2f}% of {what} unattributed (limit {limit:g}%)")
        found = failing_findings.get(k.key, [])
        if found:
            codes = sorted({f.code for f in found})
            reasons.append(f"{len(found)} finding(s) at or above {policy.fail_on}: {', '.join(codes)}")
        worst = next((b for b in result.boundaries if k.key in b.keys), None)
        example = worst.example_trace_ids[0] if worst is not None and worst.example_trace_ids else (
            found[0].trace_id if found else None)
        out[k.key] = KeyState(k.key, bool(reasons), k.share_pct, k.share_basis, limit, usd(k.unattributed_usd),
                              tuple(reasons), None if worst is None else str(worst.boundary), example)
    loose = failing_findings.get(NO_KEY, [])
    out[NO_KEY] = KeyState(
        NO_KEY, bool(loose), None, None, None, None,
        (f"{len(loose)} finding(s) about no key at or above {policy.fail_on}: {', '.join(sorted({f.code for f in loose}))}",)
        if loose else (), None, loose[0].trace_id if loose else None,
    )
    return out


def _slack(text: object) -> str:
    """Trace-derived text for Slack: control characters escaped, clipped, and &, <, > escaped
    so a span name cannot become a link or an @channel mention."""
    return inline(text, 300).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def message(state: KeyState, result: AuditResult, now: float) -> dict:
    subject = f"`{_slack(state.key)}`" if state.key is not None else "findings about no key"
    if state.failing:
        text = f":rotating_light: Attribution gate failing for {subject}: {_slack('; '.join(state.reasons))}."
        if state.worst_boundary:
            text += f" Worst boundary: `{_slack(state.worst_boundary)}`."
        if state.example_trace:
            text += f" Example trace: `{state.example_trace}`."
    else:
        share = f" ({state.share_pct:.2f}% unattributed)" if state.share_pct is not None else ""
        text = f":white_check_mark: Attribution gate recovered for {subject}{share}."
    return {
        "text": text,
        "event": FAILING if state.failing else "recovered",
        "key": state.key,
        "share_pct": None if state.share_pct is None else round(state.share_pct, 4),
        "share_basis": state.share_basis,
        "threshold_pct": state.threshold_pct,
        "fail_on": result.policy.fail_on,
        "unattributed_usd": state.unattributed_usd,
        "reasons": list(state.reasons),
        "worst_boundary": state.worst_boundary,
        "example_trace": state.example_trace,
        "traces": result.counts.traces,
        "at": round(now, 3),
    }


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # a redirect would send the message elsewhere
        return None


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def post_json(url: str, doc: dict, timeout: float = 5.0) -> int:
    """POST one message; the HTTP status (raises OSError on a network failure)."""
    req = urllib.request.Request(url, json.dumps(doc).encode(), {"Content-Type": "application/json",
                                                               "User-Agent": "trace-attribution-auditor"}, method="POST")
    try:
        with _OPENER.open(req, timeout=timeout) as r:
            r.read(65536)
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


class Alerter:
    """Decides which messages are due (``due``) and delivers them (``deliver``); ``check`` does both."""

    def __init__(self, url: str, window: float, state_path: Path | None, log: Callable[[str], None],
                 retries: int = 5, backoff: float = 1.0, post: Callable[[str, dict], int] = post_json):
        self.url = url
        self.window = window
        self.state_path = state_path
        self.log = log
        self.retries = retries
        self.backoff = backoff
        self.post = post
        self.stop = threading.Event()
        self.told: dict[str, str] = {}  # key (json) -> state last delivered
        self.sent_at: dict[tuple[str, str], float] = {}  # (key, state) -> when it was last sent
        if state_path is not None and state_path.is_file():
            try:
                self.told = dict(json.loads(state_path.read_text()).get("told", {}))
            except (OSError, ValueError):
                self.told = {}

    def due(self, result: AuditResult, now: float) -> list[tuple[str, str, dict]]:
        if not result.counts.spans:
            return []
        out = []
        for key, st in key_states(result).items():
            name = json.dumps(key)
            state = FAILING if st.failing else PASSING
            if state == self.told.get(name, PASSING):
                continue
            last = self.sent_at.get((name, state))
            if last is not None and now - last < self.window:
                continue  # told this state for this key within the window: wait
            out.append((name, state, message(st, result, now)))
        return out

    def deliver(self, name: str, state: str, doc: dict, now: float) -> bool:
        self.sent_at[(name, state)] = now  # also when delivery fails: never a storm
        delay = self.backoff
        for attempt in range(1, self.retries + 1):
            try:
                status = self.post(self.url, doc)
                err = None if 200 <= status < 300 else f"HTTP {status}"
            except (OSError, ValueError) as e:
                err = f"{type(e).__name__}: {e}"
            if err is None:
                self.told[name] = state
                self._save()
                return True
            if attempt == self.retries or self.stop.wait(delay):
                self.log(f"alert webhook: {doc['event']} for key {doc['key']} not delivered after {attempt} "
                         f"attempt(s) ({err}); will try again after the alert window")
                return False
            self.log(f"alert webhook: attempt {attempt} failed ({err}); retrying in {delay:g}s")
            delay = min(delay * 2, 60.0)
        return False

    def check(self, result: AuditResult, now: float | None = None) -> int:
        now = time.time() if now is None else now
        sent = 0
        for name, state, doc in self.due(result, now):
            if self.stop.is_set():
                break
            sent += self.deliver(name, state, doc, now)
        return sent

    def _save(self) -> None:
        if self.state_path is None:
            return
        tmp = self.state_path.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps({"told": self.told}))
            os.replace(tmp, self.state_path)
        except OSError as e:
            self.log(f"alert webhook: cannot keep the alert state in {self.state_path} ({e.strerror or e})")
