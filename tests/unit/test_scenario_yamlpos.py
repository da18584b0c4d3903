"""YAML with positions: every key and value located, duplicates and tabs reported."""

from __future__ import annotations

from harness.scenario.yamlpos import TAB_MESSAGE, load_yaml

TEXT = """\
# comment
scenario: x
topology:
  nodes:
    web: {lab: web, networks: [lan, dmz]}
    db:
      lab: db
"""


def test_positions_of_keys_and_values() -> None:
    located, problems = load_yaml(TEXT, "f.yaml")
    assert problems == [] and located is not None
    assert located.key_pos(("scenario",)) == (2, 1)
    assert located.value_pos(("scenario",)) == (2, 11)
    assert located.key_pos(("topology", "nodes", "web")) == (5, 5)
    assert located.value_pos(("topology", "nodes", "web", "lab")) == (5, 16)
    assert located.value_pos(("topology", "nodes", "web", "networks", 1)) == (5, 37)
    assert located.key_pos(("topology", "nodes", "db", "lab")) == (7, 7)


def test_missing_paths_fall_back_to_nearest_parent() -> None:
    located, _ = load_yaml(TEXT, "f.yaml")
    assert located is not None
    assert located.value_pos(("topology", "nodes", "db", "image")) == (7, 7)
    assert located.key_pos(("topology", "nodes", "db", "image")) == (6, 5)
    assert located.value_pos(("nothing", "here")) == (2, 1)


def test_duplicate_keys_are_reported_at_the_second() -> None:
    _, problems = load_yaml("a: 1\nb:\n  c: 1\n  c: 2\na: 3\n", "f.yaml")
    assert [str(p) for p in problems] == [
        "f.yaml:4:3: duplicate key 'c' (first defined on line 3)",
        "f.yaml:5:1: duplicate key 'a' (first defined on line 1)",
    ]


def test_tab_in_indentation() -> None:
    located, problems = load_yaml("a:\n  b: 1\n\t c: 2\n", "f.yaml")
    assert located is None
    assert [(p.line, p.col, p.message) for p in problems] == [(3, 1, TAB_MESSAGE)]


def test_tab_after_spaces_is_located_at_the_tab() -> None:
    _, problems = load_yaml("a:\n  b:\n  \tc: 2\n", "f.yaml")
    assert [(p.line, p.col) for p in problems] == [(3, 3)]
    assert problems[0].message == TAB_MESSAGE


def test_syntax_error_is_one_located_problem() -> None:
    located, problems = load_yaml("a: [1, 2\nb: 3\n", "f.yaml")
    assert located is None and len(problems) == 1
    assert problems[0].message.startswith("invalid YAML:")
    assert problems[0].line >= 1


def test_yaml_12_booleans() -> None:
    located, _ = load_yaml("on: client\nyes: no\nt: true\nf: FALSE\nn: null\n", "f.yaml")
    assert located is not None
    assert located.data == {"on": "client", "yes": "no", "t": True, "f": False, "n": None}


def test_anchors_and_merge_keys() -> None:
    text = "base: &b {lab: web, os: debian-12}\nnode:\n  <<: *b\n  os: debian-11\n"
    located, problems = load_yaml(text, "f.yaml")
    assert problems == [] and located is not None
    assert located.data["node"] == {"lab": "web", "os": "debian-11"}
    assert located.key_pos(("node", "os")) == (4, 3)


def test_recursive_alias_and_complex_keys_are_problems() -> None:
    _, problems = load_yaml("a: &x [*x]\n", "f.yaml")
    assert any("recursive alias" in p.message for p in problems)
    _, problems = load_yaml("? [a, b]\n: 1\n", "f.yaml")
    assert [p.message for p in problems] == ["a key must be a plain name, not a list"]


def test_unknown_tag_is_a_problem() -> None:
    _, problems = load_yaml("a: !!python/object:os.system x\n", "f.yaml")
    assert len(problems) == 1 and problems[0].line == 1
