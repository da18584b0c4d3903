"""Turn a pydantic ValidationError into located, plain-worded problems.

Pydantic's `loc` mixes data keys with union tags ('<run>', '<mapping>'); walking it against the
data gives the path in the file, and walking it against the model types gives the model whose
keys an unknown key should be compared with.
"""

from __future__ import annotations

import re
import types
from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, Tag, ValidationError
from pydantic_core import ErrorDetails

from harness.scenario.limits import SHOWN_CHARS, shown
from harness.scenario.problems import Problem
from harness.scenario.schema import KIND_KEYS, Scenario
from harness.scenario.suggest import did_you_mean, nearest
from harness.scenario.yamlpos import Located, YPath


def describe(value: Any) -> str:
    """How a value reads in a message: 'a list', 'a mapping', 'null', "'text'", '3'."""
    if value is None:
        return "null (nothing)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, str):
        return shown(value)
    text = str(value)
    return text if len(text) <= SHOWN_CHARS else shown(value)


def key_label(path: YPath) -> str:
    """The key a message is about, as written: `subnet`, `depends_on[0]`; '' at the top."""
    for i in range(len(path) - 1, -1, -1):
        if isinstance(path[i], str):
            key = path[i] if len(path[i]) <= SHOWN_CHARS else shown(path[i])
            return key + "".join(f"[{j}]" for j in path[i + 1 :])
    return ""


def data_path(data: Any, loc: tuple[int | str, ...]) -> YPath:
    """The part of `loc` that names real keys and indexes in `data` (union tags dropped)."""
    path: list[Any] = []
    cur = data
    for elem in loc:
        in_map = isinstance(cur, dict) and elem in cur
        in_list = isinstance(cur, list) and isinstance(elem, int) and 0 <= elem < len(cur)
        if in_map or in_list:
            path.append(elem)
            cur = cur[elem]
    return tuple(path)


def _strip(tp: Any) -> Any:
    while True:
        if get_origin(tp) is Annotated:
            tp = get_args(tp)[0]
            continue
        if get_origin(tp) in (Union, types.UnionType):
            members = [m for m in get_args(tp) if m is not type(None)]
            if len(members) == 1:
                tp = members[0]
                continue
        return tp


def _tag(tp: Any) -> str | None:
    if get_origin(tp) is Annotated:
        for meta in get_args(tp)[1:]:
            if isinstance(meta, Tag):
                return meta.tag
    return None


def _step_type(tp: Any, elem: Any) -> Any:
    """The type one loc element leads to inside tp (a model's field, a list's or a dict's
    items, a tagged union's member); None when it leads nowhere known."""
    tp = _strip(tp)
    origin = get_origin(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return _field_type(tp, elem)
    if origin is list:
        return get_args(tp)[0]
    if origin is dict:
        return get_args(tp)[1]
    if origin in (Union, types.UnionType):
        return _union_member(tp, elem)
    return None


def _field_type(model: type[BaseModel], elem: Any) -> Any:
    """A field's annotation; Any for a key a model with extra="allow" takes."""
    field = model.model_fields.get(elem) if isinstance(elem, str) else None
    if field is not None:
        return field.annotation
    extra = (
        model.__annotations__.get("__pydantic_extra__")
        if model.model_config.get("extra") == "allow"
        else None
    )
    return Any if extra is not None else None


def _union_member(tp: Any, elem: Any) -> Any:
    """The union member pydantic names in a loc, by its tag or its class name."""
    for member in get_args(tp):
        if _tag(member) == elem:
            return member
        bare = _strip(member)
        if isinstance(bare, type) and bare.__name__ == elem:
            return member
    return None


def model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model class a (pydantic) loc points into, starting from Scenario."""
    tp: Any = Scenario
    for elem in loc:
        tp = _step_type(tp, elem)
        if tp is None:
            return None
    tp = _strip(tp)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def _value_at(data: Any, path: YPath) -> Any:
    cur = data
    for p in path:
        cur = cur[p]
    return cur


_TYPE_WORDS = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
    "literal_error": "",
}
_MISSING_HINTS = {
    "kind": " ('fix' or 'workaround')",
    "scenario": " (the scenario's name, e.g. 'tls-min-version')",
    "topology": " (the networks and nodes to build)",
    "on": " (the node to run on)",
}


def problems_from(exc: ValidationError, located: Located, data: Any, file: str) -> list[Problem]:
    """One located problem per pydantic error, in file order, without repeats."""
    out: list[Problem] = []
    for err in exc.errors():
        problem = _one(err, located, data, file)
        if problem is not None and problem not in out:
            out.append(problem)
    return out


@dataclass(frozen=True)
class _Where:
    """Where a pydantic error points in the file: its data path and the value found there."""

    located: Located
    file: str
    path: YPath
    value: Any

    def at_value(self, msg: str) -> Problem:
        """A problem with the value: located at it, and naming its key (`subnet: expected a
        string, got 42`), since the position alone does not say which key was meant."""
        label = key_label(self.path)
        p = self.path
        pos = self.located.key_pos(p) if self.value is None else self.located.value_pos(p)
        return Problem(self.file, pos[0], pos[1], f"{label}: {msg}" if label else msg)

    def at_key(self, msg: str, p: YPath | None = None) -> Problem:
        pos = self.located.key_pos(self.path if p is None else p)
        return Problem(self.file, pos[0], pos[1], msg)


def _one(err: ErrorDetails, located: Located, data: Any, file: str) -> Problem | None:
    loc = tuple(err["loc"])
    etype = err["type"]
    path = data_path(data, loc)
    where = _Where(located, file, path, _value_at(data, path))
    if etype == "missing":
        key = loc[-1]
        return where.at_key(f"missing required key {key!r}{_MISSING_HINTS.get(str(key), '')}")
    if etype == "extra_forbidden":
        return where.at_key(_unknown_key(loc))
    if etype in KIND_KEYS:
        return _kind_problem(err, where, KIND_KEYS[etype])
    return where.at_value(_value_message(err, where.value))


def _unknown_key(loc: tuple[int | str, ...]) -> str:
    """An unknown key, with the nearest allowed one or else all of them."""
    key = loc[-1]
    model = model_at(loc[:-1])
    allowed = list(model.model_fields) if model is not None else []
    hint = did_you_mean(key, allowed)
    if hint:
        return f"unknown key {shown(key)}; {hint}"
    if allowed:
        return f"unknown key {shown(key)}; expected one of: {', '.join(allowed)}"
    return f"unknown key {shown(key)}"


def _kind_problem(err: ErrorDetails, where: _Where, wanted: tuple[str, ...]) -> Problem:
    """A mapping that matched no kind: point at a key that is a near miss of a kind's key."""
    value = where.value
    if isinstance(value, dict):
        for key in value:
            best = nearest(key, wanted)
            if best is not None and best != key:
                return where.at_key(
                    f"unknown key {key!r}; did you mean {best!r}?", (*where.path, key)
                )
        return where.at_value(f"{err['msg']}; found keys: {', '.join(map(str, value))}")
    return where.at_value(f"{err['msg']}, got {describe(value)}")


def _value_message(err: ErrorDetails, value: Any) -> str:
    """What is wrong with a value, in the scenario's words rather than pydantic's."""
    etype = err["type"]
    ctx = err.get("ctx") or {}
    if etype == "literal_error":
        return _literal_message(ctx, value)
    if etype in _TYPE_WORDS:
        return f"expected {_TYPE_WORDS[etype]}, got {describe(value)}"
    if etype in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        op = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<="}.get(
            etype, "<"
        )
        bound = next(iter(ctx.values()), "?")
        return f"expected a number {op} {bound}, got {describe(value)}"
    if etype == "too_short":
        n = ctx.get("min_length", 1)
        return f"expected at least {n} item{'s' if n != 1 else ''}"
    if etype == "value_error":
        return str(err["msg"]).removeprefix("Value error, ")
    if etype in ("str_or_list", "networks", "health"):
        return f"{err['msg']}, got {describe(value)}"
    return str(err["msg"])


def _literal_message(ctx: dict[str, Any], value: Any) -> str:
    options = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
    expected = (
        " or ".join(repr(o) for o in options)
        if len(options) <= 2
        else f"one of {', '.join(repr(o) for o in options)}"
    )
    msg = f"expected {expected}, got {describe(value)}"
    hint = did_you_mean(value, options) if isinstance(value, str) else ""
    return f"{msg}; {hint}" if hint else msg
