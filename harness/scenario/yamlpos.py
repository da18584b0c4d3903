"""YAML loading that remembers where every key and value came from.

PyYAML's constructors forget positions and silently accept duplicate keys, so we compose the
node tree with SafeLoader and build plain Python data ourselves, recording for every path
(a tuple of mapping keys and list indexes) the 1-based (line, col) of its key and its value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from harness.scenario.problems import Problem

YPath = tuple[Any, ...]
Pos = tuple[int, int]

TAB_MESSAGE = "tab character in indentation; YAML indents with spaces"


@dataclass
class Located:
    """Plain data plus the positions of every key and value in the source text."""

    data: Any
    values: dict[YPath, Pos] = field(default_factory=dict)
    keys: dict[YPath, Pos] = field(default_factory=dict)

    def value_pos(self, path: YPath) -> Pos:
        """Where the value at `path` starts; the nearest existing parent when it doesn't exist."""
        p = tuple(path)
        while p:
            if p in self.values:
                return self.values[p]
            p = p[:-1]
        return self.values.get((), (1, 1))

    def key_pos(self, path: YPath) -> Pos:
        """Where the key of `path` is written (list items: the item); else as value_pos."""
        p = tuple(path)
        if p in self.keys:
            return self.keys[p]
        if p in self.values:
            return self.values[p]
        return self.key_pos(p[:-1]) if p else (1, 1)

    def has(self, path: YPath) -> bool:
        return tuple(path) in self.values

    def remapped(self, data: Any, pairs: list[tuple[YPath, YPath]]) -> Located:
        """A view of other data (a fix applied) whose parts point back to where they were written:
        every position under a source prefix is also recorded under its destination prefix."""
        out = Located(data, dict(self.values), dict(self.keys))
        for src, dst in pairs:
            n = len(src)
            for table, target in ((self.values, out.values), (self.keys, out.keys)):
                for path, pos in table.items():
                    if path[:n] == src:
                        target[(*dst, *path[n:])] = pos
        return out


class ScenarioLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans: only true/false. `on:`, `yes`, `no`, `off` stay text,
    so `on: client` is the key 'on' and not the boolean true."""


ScenarioLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
ScenarioLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def _mark(node: yaml.Node) -> Pos:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _first_indent_tab(text: str, upto_line: int | None = None) -> Pos | None:
    for i, line in enumerate(text.splitlines(), start=1):
        if upto_line is not None and i > upto_line:
            break
        lead = re.match(r"[ \t]*", line)
        assert lead is not None
        ws = lead.group(0)
        if "\t" in ws and line.strip() and not line.lstrip(" \t").startswith("#"):
            return i, ws.index("\t") + 1
    return None


_HINTS = {
    "mapping values are not allowed here": (
        "; a value containing ': ' must be quoted, or the line is indented wrongly"
    ),
    "found character '\\t' that cannot start any token": f" ({TAB_MESSAGE})",
    "could not find expected ':'": "; a key is missing its ':' or a quote is not closed",
}


def _yaml_error(file: str, text: str, exc: yaml.YAMLError) -> Problem:
    mark = getattr(exc, "problem_mark", None)
    line = mark.line + 1 if mark is not None else 1
    col = mark.column + 1 if mark is not None else 1
    tab = _first_indent_tab(text, upto_line=line)
    if tab is not None:
        return Problem(file, tab[0], tab[1], TAB_MESSAGE)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    cmark = getattr(exc, "context_mark", None)
    msg = f"invalid YAML: {problem}"
    if context and cmark is not None:
        msg += f" ({context} on line {cmark.line + 1})"
    msg += _HINTS.get(problem, "")
    return Problem(file, line, col, msg)


def _type_word(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return "a value"


class _Builder:
    def __init__(self, loader: ScenarioLoader, file: str) -> None:
        self.loader = loader
        self.file = file
        self.out = Located(None)
        self.problems: list[Problem] = []
        self._stack: set[int] = set()

    def problem(self, pos: Pos, msg: str) -> None:
        self.problems.append(Problem(self.file, pos[0], pos[1], msg))

    def build(self, node: yaml.Node, path: YPath) -> Any:
        self.out.values[path] = _mark(node)
        if id(node) in self._stack:
            self.problem(_mark(node), "recursive alias: a value cannot contain itself")
            return None
        if isinstance(node, yaml.ScalarNode):
            try:
                return self.loader.construct_object(node, deep=True)
            except yaml.YAMLError as exc:
                msg = getattr(exc, "problem", None) or str(exc)
                self.problem(_mark(node), f"invalid YAML value: {msg}")
                return None
        self._stack.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
        finally:
            self._stack.discard(id(node))
        self.problem(_mark(node), "unsupported YAML node")  # pragma: no cover
        return None

    def _mapping(self, node: yaml.MappingNode, path: YPath) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        first_line: dict[Any, int] = {}
        explicit = list(node.value)
        merged: list[tuple[yaml.Node, yaml.Node]] = []
        if any(k.tag == "tag:yaml.org,2002:merge" for k, _ in explicit):
            try:
                self.loader.flatten_mapping(node)
            except yaml.YAMLError as exc:
                msg = getattr(exc, "problem", None) or str(exc)
                self.problem(_mark(node), f"invalid YAML merge: {msg}")
                return result
            merged = [pair for pair in node.value if pair not in explicit]
            explicit = [pair for pair in node.value if pair in explicit]
        for key_node, value_node in merged:  # `<<: *anchor` entries; explicit keys override them
            key = self._key(key_node)
            if key is not None:
                result[key] = self.build(value_node, (*path, key))
                self.out.keys[(*path, key)] = _mark(key_node)
        for key_node, value_node in explicit:
            key = self._key(key_node)
            if key is None:
                continue
            pos = _mark(key_node)
            if key in first_line:
                self.problem(
                    pos, f"duplicate key {key!r} (first defined on line {first_line[key]})"
                )
                continue
            first_line[key] = pos[0]
            self.out.keys[(*path, key)] = pos
            result[key] = self.build(value_node, (*path, key))
        return result

    def _key(self, key_node: yaml.Node) -> Any:
        if not isinstance(key_node, yaml.ScalarNode):
            self.problem(_mark(key_node), f"a key must be a plain name, not {_type_word(key_node)}")
            return None
        try:
            key = self.loader.construct_object(key_node)
        except yaml.YAMLError as exc:
            msg = getattr(exc, "problem", None) or str(exc)
            self.problem(_mark(key_node), f"invalid YAML key: {msg}")
            return None
        try:
            hash(key)
        except TypeError:
            self.problem(_mark(key_node), "a key must be a plain name")
            return None
        return key


def load_yaml(text: str, file: str) -> tuple[Located | None, list[Problem]]:
    """Parse one YAML document. Syntax errors give one located problem and no data."""
    loader = ScenarioLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.YAMLError as exc:
            return None, [_yaml_error(file, text, exc)]
        if node is None:
            return Located(None, {(): (1, 1)}), []
        builder = _Builder(loader, file)
        builder.out.data = builder.build(node, ())
        return builder.out, builder.problems
    finally:
        loader.dispose()
