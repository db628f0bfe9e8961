"""Trace-derived text made safe for terminals, CI logs and Markdown: one helper for every format.

Span names, service names, attribute values and the finding messages quoting them come from
whoever emitted the trace. Printed raw they could forge GitHub Actions workflow commands
(``::error ...``, ``::stop-commands::``, ``##[group]``), Azure ``##vso[`` commands, move the
cursor or recolour a terminal (ESC sequences, 8-bit CSI), reorder text (bidi overrides) or
break a report's layout (newlines). Every text format passes such values through ``inline``;
``guard`` is the last line of defence on a whole rendered text.

- ``inline(value)``: control characters (C0 incl. tab/newline, DEL, C1, U+2028/9, bidi
  controls) become visible escapes (``\\x1b``, ``\\n``, ``\\u202e``) and the text is clipped to
  ``MAX_CHARS`` so a megabyte value cannot become a megabyte line.
- ``guard(text)``: no line of the output may begin with a CI command marker; such a line
  gets a ``| `` prefix (our own lines never start that way).
"""

from __future__ import annotations

import re

MAX_CHARS = 400

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# A line that a CI runner reads as a command: GitHub (::cmd / ##[cmd]) and Azure (##vso[).
_COMMAND_LINE = re.compile(r"^([ \t]*)(::|##\[|##vso\[)", re.MULTILINE)


def _escape(m: re.Match) -> str:
    ch = m.group(0)
    if ch in _NAMED:
        return _NAMED[ch]
    o = ord(ch)
    return f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}"


def clip(text: str, limit: int = MAX_CHARS) -> str:
    """At most ``limit`` characters: head and tail kept, the middle counted."""
    if len(text) <= limit:
        return text
    tail = limit // 5
    head = limit - tail
    return f"{text[:head]}…[{len(text) - head - tail} more chars]…{text[len(text) - tail:]}"


def inline(value: object, limit: int = MAX_CHARS) -> str:
    """One line of trace-derived text, control characters escaped, clipped to ``limit``."""
    text = clip(str(value), limit * 4)  # clip before escaping: bounded work on huge values
    return clip(_CONTROL.sub(_escape, text), limit)


def guard(text: str) -> str:
    """No line of ``text`` starts with a CI workflow-command marker."""
    return _COMMAND_LINE.sub(r"\1| \2", text)
