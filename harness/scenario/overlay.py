"""Fixes and workarounds: a named overlay applied to the raw (interpolated) scenario tree.

Rules (docs/scenario-format.md): node keys in the overlay replace the scenario's, except `files`
and `env`, which are merged (the overlay wins per key); setting `image` drops `lab`, `version`
and `os`. The fix's `configure` items run after the scenario's. Keys under the fix's `reproduce`
replace the scenario's (a new `steps` list replaces the whole list).
"""

from __future__ import annotations

import copy
from typing import Any

from harness.scenario.schema import NodeOverlay
from harness.scenario.yamlpos import YPath

PathMap = list[tuple[YPath, YPath]]
NODE_OVERLAY_KEYS = frozenset(NodeOverlay.model_fields)


def merge_fix(data: dict[str, Any], name: str) -> tuple[dict[str, Any], PathMap]:
    """The scenario with fix `name` applied, and where each overlaid part was written."""
    merged = copy.deepcopy(data)
    fixes = merged.get("fixes")
    fix = fixes.get(name) if isinstance(fixes, dict) else None
    pairs: PathMap = []
    if not isinstance(fix, dict):
        return merged, pairs
    fp: YPath = ("fixes", name)
    pairs += _overlay_nodes(merged, fix, fp)
    pairs += _overlay_configure(merged, fix, fp)
    pairs += _overlay_reproduce(merged, fix, fp)
    return merged, pairs


def _overlay_nodes(merged: dict[str, Any], fix: dict[str, Any], fp: YPath) -> PathMap:
    """Node keys the fix sets replace the scenario's (files and env merge); a new image drops
    the lab, version and os it replaces."""
    pairs: PathMap = []
    topo = fix.get("topology")
    ov_nodes = topo.get("nodes") if isinstance(topo, dict) else None
    base_topo = merged.get("topology")
    base_nodes = base_topo.get("nodes") if isinstance(base_topo, dict) else None
    if not isinstance(ov_nodes, dict) or not isinstance(base_nodes, dict):
        return pairs
    for node_name, ov in ov_nodes.items():
        node = base_nodes.get(node_name)
        if not isinstance(node, dict) or not isinstance(ov, dict):
            continue
        if "image" in ov:
            for k in ("lab", "version", "os"):
                node.pop(k, None)
        for key, value in ov.items():
            if key not in NODE_OVERLAY_KEYS:
                continue  # the schema reports it
            old = node.get(key)
            if key in ("files", "env") and isinstance(old, dict) and isinstance(value, dict):
                node[key] = {**old, **value}
            else:
                node[key] = copy.deepcopy(value)
            src = (*fp, "topology", "nodes", node_name, key)
            pairs.append((src, ("topology", "nodes", node_name, key)))
    return pairs


def _overlay_configure(merged: dict[str, Any], fix: dict[str, Any], fp: YPath) -> PathMap:
    """The fix's configure items run after the scenario's."""
    extra = fix.get("configure")
    if not isinstance(extra, list) or not extra:
        return []
    base = merged.get("configure")
    base_list = base if isinstance(base, list) else []
    merged["configure"] = base_list + copy.deepcopy(extra)
    return [((*fp, "configure", i), ("configure", len(base_list) + i)) for i in range(len(extra))]


def _overlay_reproduce(merged: dict[str, Any], fix: dict[str, Any], fp: YPath) -> PathMap:
    """The fix's reproduce keys replace the scenario's, key by key."""
    repro = fix.get("reproduce")
    if not isinstance(repro, dict) or not repro:
        return []
    base_repro = merged.get("reproduce")
    merged["reproduce"] = {
        **(base_repro if isinstance(base_repro, dict) else {}),
        **copy.deepcopy(repro),
    }
    return [((*fp, "reproduce", key), ("reproduce", key)) for key in repro]
