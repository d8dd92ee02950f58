"""``replace``: :func:`dataclasses.replace` for the engine's frozen values, a few times cheaper.

A step copies its context and conversation several times (a turn learns a name, resets a
counter, proposes slots, moves on); :func:`dataclasses.replace` looks every field up again on
each call and goes through the generated ``__init__``. For a frozen dataclass with slots whose
``__init__`` is the generated one and that has no ``__post_init__`` (nor init-only or
``init=False`` fields), the copy that ``__init__`` would make is made here directly: a new
instance whose slots are set one by one, the changed fields from ``changes`` and the others
from ``obj``, by a function written once per class (as :mod:`dataclasses` writes
``__init__``). The slots are set on an instance of a plain twin of the class (the same slots,
not frozen) that then becomes the class's instance by ``__class__`` assignment, which Python
allows between classes of one layout; a class with a base of its own has its slots set through
their descriptors. The result is the same value — equal, hashed and frozen alike, its fields
in the same slots. Any other class goes to :func:`dataclasses.replace`.

Type checkers see :func:`dataclasses.replace` itself, so they check the field names and types
of every call.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

_Replacer = Callable[..., Any]
_REPLACERS: dict[type, _Replacer] = {}
_KEEP = object()  # "not given": the field keeps obj's value


def _eligible(cls: type) -> bool:
    """True when a copy of ``cls`` made slot by slot is what its ``__init__`` would make."""
    own = vars(cls)
    params = own.get("__dataclass_params__")  # a dataclass itself, not a subclass of one
    if params is None or not params.frozen or "__slots__" not in own or cls.__dictoffset__:
        return False  # not frozen, or its instances have a __dict__
    if hasattr(cls, "__post_init__"):
        return False
    declared = own["__dataclass_fields__"]
    fields = dataclasses.fields(cls)
    if len(fields) != len(declared) or not all(f.init for f in fields):
        return False  # a ClassVar, an InitVar or a field left out of __init__
    if not all(inspect.ismemberdescriptor(getattr(cls, f.name, None)) for f in fields):
        return False  # not slotted
    if any(f.name.startswith("__rdv_") for f in fields):
        return False  # the copying function's own names
    init = getattr(own.get("__init__"), "__code__", None)
    return init is not None and init.co_filename == "<string>"  # the generated __init__


def _twin(cls: type, names: list[str]) -> type | None:
    """A plain class with the very slots of ``cls`` (not frozen), whose instance, once its slots
    are set, becomes an instance of ``cls`` by ``__class__`` assignment (which Python allows
    between classes of the same base and slots, so of the same layout); None when ``cls`` has
    a base of its own or other slots than its fields. Setting a plain slot is a few times
    cheaper than calling its descriptor's ``__set__``."""
    slots = vars(cls).get("__slots__")
    if cls.__bases__ != (object,) or not isinstance(slots, tuple) or sorted(slots) != sorted(names):
        return None
    twin = type(f"{cls.__name__}Slots", (), {"__slots__": slots, "__module__": __name__})
    probe: Any = object.__new__(twin)
    try:
        probe.__class__ = cls
    except TypeError:
        return None
    return twin


def _replacer(cls: type) -> _Replacer:
    """The copying function of ``cls`` (written once), or ``dataclasses.replace``."""
    found = _REPLACERS.get(cls)
    if found is not None:
        return found
    if not _eligible(cls):
        _REPLACERS[cls] = dataclasses.replace  # which raises when obj is no dataclass instance
        return dataclasses.replace
    names = [f.name for f in dataclasses.fields(cls)]
    twin = _twin(cls, names)
    # Keyword-only parameters: a positional extra or an unknown field is a TypeError, as with
    # dataclasses.replace. The function's own names start with "__rdv_" (no field's does).
    if twin is not None:  # slots set as plain attributes of the twin, then the instance made cls's
        body = [
            "    __rdv_new = __rdv_make(__rdv_twin)",
            *(f"    __rdv_new.{n} = __rdv_obj.{n} if {n} is __rdv_keep else {n}" for n in names),
            "    __rdv_new.__class__ = __rdv_cls",
        ]
    else:  # each slot set through its descriptor
        body = [
            "    __rdv_new = __rdv_make(__rdv_cls)",
            *(f"    __rdv_set_{n}(__rdv_new, __rdv_obj.{n} if {n} is __rdv_keep else {n})" for n in names),
        ]
    lines = [
        f"def replace(__rdv_obj, /, *, {', '.join(f'{n}=__rdv_keep' for n in names)}):",
        *body,
        "    return __rdv_new",
    ]
    scope: dict[str, Any] = {"__rdv_keep": _KEEP, "__rdv_make": object.__new__, "__rdv_cls": cls, "__rdv_twin": twin}
    scope.update({f"__rdv_set_{n}": getattr(cls, n).__set__ for n in names})
    exec("\n".join(lines), scope)  # written from the class's own field names, as dataclasses does
    written: _Replacer = scope["replace"]
    written.__qualname__ = f"{cls.__qualname__}.replace"
    _REPLACERS[cls] = written
    return written


def _replace(obj: Any, /, **changes: Any) -> Any:
    """``obj`` with ``changes`` (see the module's docstring)."""
    fn = _REPLACERS.get(type(obj))
    if fn is None:
        fn = _replacer(type(obj))
    return fn(obj, **changes)


if TYPE_CHECKING:
    from dataclasses import replace as replace
else:
    replace = _replace
