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

from harness.scenario.limits import (
    MAX_ALIASES,
    MAX_DEPTH,
    MAX_KEY_CHARS,
    MAX_NUMBER_DIGITS,
    MAX_SCALAR_CHARS,
    MAX_YAML_NODES,
)
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


class LimitHit(yaml.YAMLError):
    """A size limit (limits.py) was hit while composing; located at `mark`."""

    def __init__(self, mark: Any, message: str) -> None:  # a yaml Mark
        super().__init__(message)
        self.problem_mark = mark
        self.message = message


class ScenarioLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans: only true/false. `on:`, `yes`, `no`, `off` stay text,
    so `on: client` is the key 'on' and not the boolean true.

    Composing is bounded: PyYAML's composer recurses once per nesting level (a RecursionError
    on deep input) and happily composes thousands of alias uses (billion laughs), so depth,
    node count and alias uses are counted here and stop the parse with a located LimitHit."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0
        self._aliases = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise LimitHit(
                    event.start_mark,
                    f"more than {MAX_ALIASES} alias uses (*name) in one file (limit MAX_ALIASES)",
                )
        self._nodes += 1
        if self._nodes > MAX_YAML_NODES:
            raise LimitHit(
                event.start_mark,
                f"more than {MAX_YAML_NODES:,} values in one file (limit MAX_YAML_NODES)",
            )
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise LimitHit(
                    event.start_mark,
                    f"nested more than {MAX_DEPTH} levels deep (limit MAX_DEPTH)",
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


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


def _reader_error(file: str, text: str, exc: yaml.reader.ReaderError) -> Problem:
    """PyYAML refuses non-printable characters (NUL, other control characters) before parsing;
    say which and where, without echoing the text around it."""
    pos = min(max(exc.position, 0), len(text))
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    char = exc.character if isinstance(exc.character, str) else chr(exc.character)
    return Problem(
        file,
        line,
        col,
        f"control character U+{ord(char):04X} is not allowed in a scenario file "
        "(YAML text is printable characters, tabs and newlines)",
    )


def _type_word(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return "a value"


_NUMBER_TAGS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")


def _scalar_limit(
    node: yaml.ScalarNode, most: int = MAX_SCALAR_CHARS, name: str = "limit MAX_SCALAR_CHARS"
) -> str | None:
    """Why a scalar is too long to construct, or None. A long integer would also fail in int()
    (Python refuses over 4,300 digits), so numbers have a much smaller bound."""
    size = len(node.value)
    if node.tag in _NUMBER_TAGS and size > MAX_NUMBER_DIGITS:
        return (
            f"a number of {size:,} characters; at most {MAX_NUMBER_DIGITS} "
            "(limit MAX_NUMBER_DIGITS); quote it if it is text"
        )
    if size > most:
        return f"a value of {size:,} characters; at most {most:,} ({name})"
    return None


class _Builder:
    def __init__(self, loader: ScenarioLoader, file: str) -> None:
        self.loader = loader
        self.file = file
        self.out = Located(None)
        self.problems: list[Problem] = []
        self._stack: set[int] = set()
        self._built = 0
        self.stopped = False  # a limit was hit: the data is incomplete and must not be checked

    def problem(self, pos: Pos, msg: str) -> None:
        self.problems.append(Problem(self.file, pos[0], pos[1], msg))

    def _limit(self, node: yaml.Node, msg: str) -> None:
        if not self.stopped:
            self.stopped = True
            self.problem(_mark(node), msg)

    def build(self, node: yaml.Node, path: YPath) -> Any:
        """Plain data for `node`. Aliases are expanded here, so the expanded size and depth are
        bounded here too (the composer only sees each anchored node once)."""
        if self.stopped or self._over_limits(node, path):
            return None
        self.out.values[path] = _mark(node)
        if id(node) in self._stack:
            self.problem(_mark(node), "recursive alias: a value cannot contain itself")
            return None
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node)
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

    def _over_limits(self, node: yaml.Node, path: YPath) -> bool:
        """Count one more value built; True (and stop, with a problem) past the size or depth
        limit."""
        self._built += 1
        if self._built > MAX_YAML_NODES:
            self._limit(
                node,
                f"aliases expand to more than {MAX_YAML_NODES:,} values (limit MAX_YAML_NODES)",
            )
            return True
        if len(path) > MAX_DEPTH:
            self._limit(
                node, f"aliases nest values more than {MAX_DEPTH} levels deep (limit MAX_DEPTH)"
            )
            return True
        return False

    def _scalar(self, node: yaml.ScalarNode) -> Any:
        """A scalar's value; None, with a problem, when it is too long or does not construct."""
        too_long = _scalar_limit(node)
        if too_long:
            self.problem(_mark(node), too_long)
            return None
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            msg = getattr(exc, "problem", None) or str(exc)
            self.problem(_mark(node), f"invalid YAML value: {msg}")
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
        too_long = _scalar_limit(key_node, MAX_KEY_CHARS, "limit MAX_KEY_CHARS")
        if too_long:
            self.problem(_mark(key_node), f"a key {too_long.removeprefix('a value ')}")
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
    """Parse one YAML document. Syntax errors and limits hit give one located problem and no
    data."""
    try:
        loader = ScenarioLoader(text)  # the reader rejects control characters right here
    except yaml.reader.ReaderError as exc:
        return None, [_reader_error(file, text, exc)]
    try:
        try:
            node = loader.get_single_node()
        except LimitHit as exc:
            mark = exc.problem_mark
            return None, [Problem(file, mark.line + 1, mark.column + 1, exc.message)]
        except yaml.reader.ReaderError as exc:
            return None, [_reader_error(file, text, exc)]
        except yaml.YAMLError as exc:
            return None, [_yaml_error(file, text, exc)]
        if node is None:
            return Located(None, {(): (1, 1)}), []
        builder = _Builder(loader, file)
        builder.out.data = builder.build(node, ())
        if builder.stopped:
            return None, builder.problems
        return builder.out, builder.problems
    finally:
        loader.dispose()
