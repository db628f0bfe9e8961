"""A progress bar on stderr (tqdm) for long audits: only when stderr is a terminal, so logs,
pipes and CI output stay clean; stdout (the report) is never touched."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Callable, Iterator


@contextmanager
def progress_bar(desc: str, unit: str) -> Iterator[Callable[[int], object] | None]:
    """Yields ``update(n)`` while a bar is shown, ``None`` when it is off (not a terminal)."""
    if not sys.stderr.isatty():
        yield None
        return
    from tqdm import tqdm

    with tqdm(desc=desc, unit=unit, unit_scale=True, file=sys.stderr, leave=False, mininterval=0.5) as bar:
        yield bar.update
