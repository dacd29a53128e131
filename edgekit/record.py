"""The base of edgekit's typed results (edgekit/results.py): a dataclass that is also its JSON dict.

`Record` keeps two views of one result in step: typed dataclass fields (the truth) and the
`dict` items that are exactly the JSON object, so `result["key"]`, `json.dumps(result)` and
`result == json.loads(text)` behave as they did when the API returned plain dicts.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import fields
from types import MappingProxyType
from typing import Any, ClassVar

__all__ = ["Record"]


def _plain(value):
    """A deep copy of VALUE as plain JSON data: records become dicts, containers are copied."""
    if isinstance(value, Record):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    return value


@functools.cache
def _field_names(cls) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls) if f.name != "extra")


class Record(dict):
    """Base of every typed result: a dataclass whose `dict` items are its JSON object.

    Subclasses are `@dataclass(eq=False, kw_only=True)` classes whose field names are the JSON
    keys. `_REQUIRED` names the keys the schema requires (always written when a record is
    built by hand); `_NESTED` and `_LISTS` map a key to the loader of its object value or of
    each item of its array value. A key absent from the source dict stays absent in
    `to_dict()` while its attribute is None; a key present as null stays null.

    Equality is the dict's: a record equals its `to_dict()` and any record with the same JSON.
    """

    _REQUIRED: ClassVar[tuple[str, ...]] = ()
    _NESTED: ClassVar[dict[str, Callable[[Mapping], Any]]] = {}
    _LISTS: ClassVar[dict[str, Callable[[Mapping], Any]]] = {}
    _ready: ClassVar[bool] = False  # set per instance once __post_init__ has run

    # -- reading and writing -----------------------------------------------------------------

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]):
        """Read the JSON object D (a dict, or another record) into this class.

        Keys that are fields become typed attributes (nested objects typed too); every other
        key goes to `extra`. The key order of D is kept. Nothing in D is shared with the
        result (containers are copied). Missing required keys are tolerated (attribute None,
        key still absent), so an older or partial report still loads.

        Raises:
            TypeError: D is not a mapping (a programming error, not an edgekit exit code).
        """
        if not isinstance(d, Mapping):
            raise TypeError(f"{cls.__name__}.from_dict needs a mapping, not {type(d).__name__}")
        d = _plain(d)
        names = cls._field_names()
        kwargs = {n: d.get(n) for n in names}
        extra = {k: v for k, v in d.items() if k not in names}
        obj = cls(**kwargs, extra=extra)
        object.__setattr__(obj, "_order", tuple(d))
        obj._sync()
        return obj

    def to_dict(self) -> dict[str, Any]:
        """The JSON object: plain dicts, lists and scalars only, in the source's key order.

        For a result returned by the API this equals the dict the underlying function
        (`build.convert`, `validation.validate`, `profiling.profile`, `pipeline.run`) returned.
        """
        return {k: _plain(v) for k, v in dict.items(self)}

    @classmethod
    def _field_names(cls) -> tuple[str, ...]:
        return _field_names(cls)

    def __post_init__(self):
        object.__setattr__(self, "_order", tuple(n for n in self._field_names() if n in self._REQUIRED))
        for name in self._field_names():
            object.__setattr__(self, name, self._coerce(name, getattr(self, name)))
        object.__setattr__(self, "extra", self._check_extra(self.extra))
        object.__setattr__(self, "_ready", True)
        self._sync()

    def _coerce(self, name: str, value):
        """A plain dict (or list of dicts) given for a typed key → the typed object(s)."""
        if name in self._NESTED and isinstance(value, Mapping) and not isinstance(value, Record):
            return self._NESTED[name](value)
        if name in self._LISTS and isinstance(value, list):
            load = self._LISTS[name]
            return [load(v) if isinstance(v, Mapping) and not isinstance(v, Record) else v for v in value]
        return value

    def _check_extra(self, extra) -> MappingProxyType:
        extra = dict(extra or {})
        clash = set(extra) & set(self._field_names())
        if clash:
            raise ValueError(f"{type(self).__name__}: {sorted(clash)} are fields, not extra keys")
        return MappingProxyType(extra)

    def _sync(self) -> None:
        """Rebuild the dict items from the fields and `extra` (the fields are the truth)."""
        values = {n: getattr(self, n) for n in self._field_names()}
        values.update(self.extra)
        keys = [k for k in self._order if k in values]  # the source's keys, in its order
        seen = set(keys)
        keys += [k for k in values if k not in seen and (k in self.extra or values[k] is not None)]
        dict.clear(self)
        dict.update(self, ((k, values[k]) for k in keys))

    def __setattr__(self, name, value):
        if not self._ready or name.startswith("_"):
            object.__setattr__(self, name, value)
            return
        if name == "extra":
            value = self._check_extra(value)
        elif name in self._field_names():
            value = self._coerce(name, value)
        object.__setattr__(self, name, value)
        self._sync()

    def __getattr__(self, name):  # only called when normal lookup fails: extra keys as attributes
        extra = self.__dict__.get("extra") or {}
        if name in extra:
            return extra[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # -- the dict interface: reads are dict's own; writes go through the fields --------------

    def __setitem__(self, key, value):
        """`result[key] = value`: a field is set as its attribute (typed if nested), any other key in `extra`."""
        if key in self._field_names():
            setattr(self, key, value)
        else:
            self.extra = {**self.extra, key: value}

    def __delitem__(self, key):
        """`del result[key]`: a field becomes None with its key absent; an extra key is dropped."""
        if not dict.__contains__(self, key):
            raise KeyError(key)
        object.__setattr__(self, "_order", tuple(k for k in self._order if k != key))
        if key in self._field_names():
            setattr(self, key, None)
        else:
            self.extra = {k: v for k, v in self.extra.items() if k != key}

    def update(self, other=(), /, **kw):
        """Set each key as `self[key] = value` would (a field by attribute, any other key in `extra`)."""
        for k, v in dict(other, **kw).items():
            self[k] = v

    def __ior__(self, other):
        self.update(other)
        return self

    def setdefault(self, key, default=None):
        """`self[key]`, after setting it to DEFAULT if the key is absent (as dict.setdefault)."""
        if key not in self:
            self[key] = default
        return self[key]

    _NO_DEFAULT = object()

    def pop(self, key, default=_NO_DEFAULT):
        """Remove KEY and return its value (a field becomes None and its key absent); as dict.pop.

        Raises:
            KeyError: KEY is absent and no DEFAULT was given.
        """
        if key not in self:
            if default is Record._NO_DEFAULT:
                raise KeyError(key)
            return default
        value = self[key]
        del self[key]
        return value

    def popitem(self):
        """Refused (TypeError): which key goes would be arbitrary; `del result[key]` says which."""
        raise TypeError(f"{type(self).__name__} keys follow the schema; delete a key by name")

    def clear(self):
        """Refused (TypeError): a result without its keys is no longer its schema object."""
        raise TypeError(f"{type(self).__name__} keys follow the schema; delete a key by name")

    def __reduce__(self):  # copy.copy, copy.deepcopy and pickle rebuild through from_dict
        return (type(self).from_dict, (self.to_dict(),))
