"""The progress bar: on stderr when it is a terminal, absent otherwise; never on stdout."""

from __future__ import annotations

import io
import sys
from pathlib import Path

from auditor.commands.progress import progress_bar
from auditor.pipeline import audit_files
from auditor.plan import Plan

SAMPLE = Path(__file__).resolve().parent.parent / "sample_traces" / "core" / "baggage_dropped.otlp.json"


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bar_counts_decoded_spans_on_a_terminal(monkeypatch):
    err = Tty()
    monkeypatch.setattr(sys, "stderr", err)
    seen = []
    with progress_bar("decoding", "span") as update:
        assert update is not None
        result = audit_files([str(SAMPLE)], Plan.of(None), progress=lambda n: (seen.append(n), update(n)))
    assert sum(seen) == result.counts.spans == 18
    assert "decoding" in err.getvalue()


def test_no_bar_when_stderr_is_not_a_terminal(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    with progress_bar("decoding", "span") as update:
        assert update is None
