"""Fast pickling of the model's frozen/slotted dataclasses for the store.

The default pickling of slotted dataclasses goes through Python-level ``__getstate__`` /
``__setstate__`` that call ``dataclasses.fields()`` per object: it dominated the worker.
Here each class reduces to ``(cls, attrgetter(*fields)(obj))``, all in C on the way out.
Read back only by this package (the blobs are a cache of our own objects, not an exchange
format); a model change simply re-pickles with the new fields.
"""

from __future__ import annotations

import copyreg
import dataclasses
import io
import pickle
from operator import attrgetter
from enum import Enum
from types import MappingProxyType

from auditor import model


def _table() -> dict:
    table = dict(copyreg.dispatch_table)
    for obj in vars(model).values():
        if isinstance(obj, type) and dataclasses.is_dataclass(obj) and obj.__module__ == model.__name__:
            names = [f.name for f in dataclasses.fields(obj) if f.init]
            if not names:
                continue
            get = attrgetter(*names)
            if len(names) == 1:
                table[obj] = lambda o, _g=get, _c=obj: (_c, (_g(o),))
            else:
                table[obj] = lambda o, _g=get, _c=obj: (_c, _g(o))
        elif isinstance(obj, type) and issubclass(obj, Enum) and obj.__module__ == model.__name__:
            table[obj] = _enum  # by name: Enum(value) on load is slow for str-mixin enums
    table[MappingProxyType] = lambda o: (dict, (dict(o),))
    return table


def _enum(o):
    return getattr, (type(o), o.name)


_TABLE = _table()


def dumps(obj) -> bytes:
    buf = io.BytesIO()
    p = pickle.Pickler(buf, pickle.HIGHEST_PROTOCOL)
    p.dispatch_table = _TABLE
    p.dump(obj)
    return buf.getvalue()


loads = pickle.loads
