"""What a check sees: one trace with everything resolved once, or the whole result's calls.

The engine builds these; checks read them and return findings, nothing else. ``enabled``
lets a check skip work for codes the policy turned off (an optimisation only: the policy
itself is applied once, in ``rollup.finish``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping

from auditor.model import LlmCall

if TYPE_CHECKING:  # the engine's compiled schema; rules only read it
    from auditor.assemble import Trace
    from auditor.compiled import Compiled


@dataclass(frozen=True, slots=True)
class TraceContext:
    trace: "Trace"
    compiled: "Compiled"
    is_llm: Mapping[str, bool]
    values: Mapping[str, tuple]  # span id -> resolved value per schema key (None when absent)
    below: Mapping[str, bool]  # span id -> an LLM call is at or below it
    calls: Mapping[str, LlmCall]  # span id -> its priced call record
    enabled: Callable[[str], bool]


@dataclass(frozen=True, slots=True)
class Folded:
    """One LLM call recorded by several spans: the record kept and the ones folded into it."""

    kept: LlmCall
    folded: tuple[LlmCall, ...]


@dataclass(frozen=True, slots=True)
class ResultContext:
    calls: tuple[LlmCall, ...]  # unique calls, sorted by ref
    folded: tuple[Folded, ...]
    keys: tuple[str, ...]
    required_keys: tuple[str, ...]
    enabled: Callable[[str], bool]
    llm_like_unread: int = 0  # spans that look like LLM calls but no selector picked
    llm_like_example: tuple[str, str] | None = None
    dialects: tuple[tuple[str, int], ...] = ()  # dialect -> traces that speak it


def lacks(call: LlmCall, key: str) -> bool:
    """The call's schema asks for ``key`` and the call has no value for it.

    With dialect detection each trace is read by its own schema, so a call may not know a
    key at all (a Claude Code key on a LangChain call): that is not a missing value.
    """
    return key in call.values and call.values[key] is None


def value(call: LlmCall, key: str) -> Any:
    return call.values.get(key)
