"""Machine-readable result; the format is documented by schemas/report.schema.json."""

from __future__ import annotations

import gc
import json
import secrets
from itertools import islice
from typing import Iterable, Iterator

import orjson

from auditor.result_json import records_json, to_json

SLICE = 2000  # findings or calls encoded at a time


def render(result, options=None) -> str:
    return "".join(render_chunks(result, options))


def render_chunks(result, options=None) -> Iterator[str]:
    """``render``'s text in pieces, to write as they come: at 1M spans the document is 600 MB,
    and the dicts, the bytes and the text of it whole took about 2 GB at once. The document is
    encoded with a random stand-in for each long list (findings, calls), and each list is
    encoded SLICE items at a time and indented to its place: the text is the same, byte for
    byte (JSON text holds no raw newline but between tokens)."""
    # The document is a million small dicts and lists with no reference cycles: the cyclic
    # collector would scan the whole heap several times while they are built (0.35 s of
    # 0.55 s at 100k spans) and free nothing. Reference counting frees them as usual.
    was = gc.isenabled()
    gc.disable()
    try:
        nonce = secrets.token_hex(16)
        holes = {name: f"{nonce}:{name}" for name in ("findings", "calls")}
        head = dumps(to_json(result, **holes))
        at = 0
        for name, items in records_json(result).items():
            mark = f'"{holes[name]}"'
            cut = head.index(mark, at)
            yield head[at:cut]
            yield from list_chunks(items)
            at = cut + len(mark)
        yield head[at:]
    finally:
        if was:
            gc.enable()


def list_chunks(items: Iterable, pad: str = "  ") -> Iterator[str]:
    """A list that is a value of the top-level object, as ``dumps`` of the whole writes it."""
    it = iter(items)
    first = True
    while batch := list(islice(it, SLICE)):
        body = dumps(batch)[2:-3]  # "[\n" ... "\n]\n"
        yield ("[\n" if first else ",\n") + pad + body.replace("\n", "\n" + pad)
        first = False
    yield "[]" if first else "\n" + pad + "]"


def dumps(doc) -> str:
    """``json.dumps(doc, indent=2, ensure_ascii=False) + "\\n"``, byte for byte, encoded by orjson.

    orjson (C, about 20x the pure-Python indenting encoder that ``indent=2`` selects) writes
    the same text for everything a report holds: str keys, strings (the same escapes, no
    ASCII escaping), ints of up to 64 bits, tuples as lists, enums by value, and floats whose
    ``repr`` has no exponent. Everything else takes ``json.dumps`` itself, so the text never
    changes: floats that ``repr`` writes with an exponent (below 1e-4 or from 1e16; orjson
    writes ``1.5e-05`` as ``0.000015``) or as NaN/Infinity (orjson: null), found by one walk
    after encoding; and whatever orjson refuses (wider ints, lone surrogates, non-str keys,
    unknown types), which then raises or encodes exactly as before.
    """
    try:
        out = orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
    except (orjson.JSONEncodeError, TypeError):
        out = None
    # orjson has refused cycles and nesting past 254 levels, so the walk ends
    if out is not None and _orjson_safe(doc):
        return out.decode()
    return json.dumps(doc, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def _orjson_safe(doc) -> bool:
    """No float that orjson writes differently from ``repr`` (see ``dumps``)."""
    stack = [(doc,)]
    pop, push = stack.pop, stack.append
    while stack:
        box = pop()
        for v in box.values() if type(box) is dict else box:
            t = type(v)
            if t is str or t is int or v is None:
                continue
            if t is dict or t is list or t is tuple:
                push(v)
            elif t is float:
                if v and not 1e-4 <= abs(v) < 1e16:  # also NaN and the infinities
                    return False
            elif t is bool:
                continue
            elif isinstance(v, (dict, list, tuple)):
                push(v)
            elif isinstance(v, float):
                return False
    return True
