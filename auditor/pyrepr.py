"""Python-repr literals (``str(dict)``, as LiteLLM writes metadata) read without executing them.

``ast.literal_eval`` evaluates literals only (no calls, no names); before it ever runs we
refuse oversized strings, deep nesting and comments, and walk the tree against an allow-list,
so hostile input costs nothing and runs nothing.
"""

from __future__ import annotations

import ast
from functools import lru_cache
from typing import Any

MAX_REPR_CHARS = 64 * 1024
MAX_REPR_DEPTH = 16


def parse_pyrepr(v: Any) -> Any:
    """A Python-repr dict (``str(dict)``, as LiteLLM writes metadata) read without executing it.

    ``ast.literal_eval`` evaluates literals only (no calls, no names); we also refuse oversized
    strings and deep nesting before parsing, so hostile input costs nothing.
    """
    if isinstance(v, dict):
        return v
    if not isinstance(v, str) or not v or v[0] != "{" or len(v) > MAX_REPR_CHARS:
        return None
    out = parse_literal(v)
    return out if isinstance(out, dict) else None


MAX_REPR_NODES = 10_000
_LITERAL_NODES = (ast.Expression, ast.Dict, ast.List, ast.Tuple, ast.Set, ast.Constant, ast.UnaryOp, ast.USub, ast.UAdd, ast.Load)


@lru_cache(maxsize=4096)
def parse_literal(v: str) -> Any:
    """Parse a literal; ``None`` for anything else (calls, names, operators, comments, deep nesting).

    Three gates before ``ast.literal_eval`` ever sees it: a bracket scan (nesting and comments,
    which could hide brackets from the scan), the parser itself (its own nesting limit), and an
    allow-list walk over the tree (only literal nodes, bounded depth and size).
    """
    depth = 0
    in_str: str | None = None
    esc = False
    for ch in v:
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == in_str:
                in_str = None
        elif ch in "'\"":
            in_str = ch
        elif ch == "#":
            return None
        elif ch in "{[(":
            depth += 1
            if depth > MAX_REPR_DEPTH:
                return None
        elif ch in "}])":
            depth -= 1
    try:
        tree = ast.parse(v, mode="eval")
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    if not _literal_only(tree):
        return None
    try:
        out = ast.literal_eval(tree)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    return out if isinstance(out, (dict, list)) else None


def _literal_only(tree: ast.AST) -> bool:
    stack = [(tree, 0)]
    seen = 0
    while stack:
        node, d = stack.pop()
        seen += 1
        if seen > MAX_REPR_NODES or d > 2 * MAX_REPR_DEPTH + 2 or not isinstance(node, _LITERAL_NODES):
            return False
        stack.extend((c, d + 1) for c in ast.iter_child_nodes(node))
    return True
