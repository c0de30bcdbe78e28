"""Settings checked against a class signature: the arguments it accepts, their defaults and types, construction with
one-line errors."""

from __future__ import annotations

import inspect
import math
import re
import types
import typing
from typing import Any, Literal, Union

from genbench.errors import GenbenchError


def _init_chain(cls: type):
    """Each ``__init__`` whose keywords ``cls(...)`` accepts, from ``cls`` up, with its parameters: the hierarchy is
    followed while an ``__init__`` passes ``**kwargs`` on."""
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        params = inspect.signature(init).parameters
        yield init, {n: p for n, p in params.items() if n != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
        if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
            break


def accepted_arguments(cls: type) -> set[str]:
    """Keyword names accepted by ``cls(...)``, following ``**kwargs`` up the class hierarchy."""
    return {name for _, params in _init_chain(cls) for name in params}


def signature_defaults(cls: type) -> dict[str, Any]:
    """The default of every keyword ``cls(...)`` accepts, following ``**kwargs`` up the class hierarchy (a
    subclass's default wins); arguments without a default are left out."""
    out: dict[str, Any] = {}
    for _, params in _init_chain(cls):
        for name, p in params.items():
            if p.default is not p.empty:
                out.setdefault(name, p.default)
    return out


def argument_types(cls: type) -> dict[str, Any]:
    """The annotated type of every keyword ``cls(...)`` accepts (the subclass's annotation wins)."""
    out: dict[str, Any] = {}
    for init, params in _init_chain(cls):
        try:
            hints = typing.get_type_hints(init)
        except Exception:  # an annotation that cannot be evaluated is not checked
            hints = {}
        for name in params:
            if name in hints:
                out.setdefault(name, hints[name])
    return out


def is_count(value: Any, least: int) -> bool:
    """Whether ``value`` is an integer (not a bool) of at least ``least``."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def matches_type(value: Any, annotation: Any) -> bool:
    """Whether a config value fits an annotation (an int is a float, a bool is not a number; containers are
    checked as containers; an annotation not understood here accepts anything)."""
    if annotation is Any:
        return True
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        return any(matches_type(value, arg) for arg in typing.get_args(annotation))
    if origin is Literal:
        return value in typing.get_args(annotation)
    if annotation is type(None):
        return value is None
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation in (bool, str):
        return isinstance(value, annotation)
    base = origin or annotation
    if base in (list, tuple):
        return isinstance(value, (list, tuple))
    if base is dict:
        return isinstance(value, dict)
    return True


#: option names that hold a learning rate (``lr``, ``gen_lr``, ``d_lr`` …): a positive, finite number wherever given
LEARNING_RATE = re.compile(r"(^|_)lr$")


def check_types(cls: type, options: dict, what: str) -> None:
    """Refuse, in one line, a value whose type does not fit its argument's annotation (``model.lr=abc``), a number that
    is not finite (``model.lr=.nan``) and a learning rate that is not positive (``model.lr=-0.1``)."""
    for name, value in options.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise GenbenchError(f"bad {what} option {name}={value!r}: a number must be finite")
        if LEARNING_RATE.search(name) and isinstance(value, (int, float)) and not isinstance(value, bool) and value <= 0:
            raise GenbenchError(f"bad {what} option {name}={value!r}: a learning rate must be positive")
    for name, annotation in argument_types(cls).items():
        if name in options and not matches_type(options[name], annotation):
            shown = getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")
            raise GenbenchError(f"bad {what} option {name}={options[name]!r}: expected {shown}")


def instantiate(cls: type, options: dict, what: str) -> Any:
    """``cls(**options)`` after checking every key is an argument of ``cls`` and every value fits its type."""
    allowed = accepted_arguments(cls)
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise GenbenchError(f"unknown {what} option(s) {unknown}; {cls.__name__} accepts: {', '.join(sorted(allowed))}")
    check_types(cls, options, what)
    try:
        return cls(**options)
    except (TypeError, ValueError) as exc:
        raise GenbenchError(f"bad {what} config: {exc}") from None
