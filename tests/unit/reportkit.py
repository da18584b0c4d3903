"""Helpers for the report tests: a run folder made from a journal captured from a real run
(tests/unit/journals/, paths rewritten to /srv/lab/...), with the files its collect phase
names created small, so attachments and links have something to point at."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

JOURNALS = Path(__file__).resolve().parent / "journals"
XSD = Path(__file__).resolve().parent / "junit-jenkins.xsd"
XS = "{http://www.w3.org/2001/XMLSchema}"


def journal(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((JOURNALS / f"{name}.json").read_text())
    return data


def make_run(tmp: Path, name: str, data: dict[str, Any] | None = None) -> Path:
    j = data if data is not None else journal(name)
    folder = tmp / str(j.get("scenario", "x")) / str(j.get("run", name))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "journal.json").write_text(json.dumps(j))
    for p in j.get("phases", []):
        if p.get("phase") == "collect":
            for node, files in p.get("nodes", {}).items():
                for f in files:
                    target = folder / "artifacts" / node / f
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_text(f"{node} {f}\n")
            for cap in p.get("captures", []):
                target = folder / "captures" / Path(cap["path"]).name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(b"\xd4\xc3\xb2\xa1" + b"\0" * 20)
    (folder / "REPRODUCE.md").write_text("# Reproduce\n")
    return folder


# -- a validator driven by the XSD file (the subset of XML Schema it uses) ------------------


class Schema:
    def __init__(self, path: Path = XSD) -> None:
        root = ET.parse(path).getroot()
        self.patterns: dict[str, str] = {}
        for st in root.findall(f"{XS}simpleType"):
            pat = st.find(f"{XS}restriction/{XS}pattern")
            if pat is not None:
                self.patterns[st.get("name", "")] = pat.get("value", "")
        self.elements: dict[str, dict[str, Any]] = {}
        for el in root.findall(f"{XS}element"):
            ct = el.find(f"{XS}complexType")
            attrs = {}
            children: list[tuple[str, int, float]] = []
            if ct is not None:
                for a in ct.findall(f"{XS}attribute"):
                    attrs[a.get("name", "")] = (a.get("type", ""), a.get("use") == "required")
                seq = ct.find(f"{XS}sequence")
                for c in seq.findall(f"{XS}element") if seq is not None else []:
                    mx = c.get("maxOccurs", "1")
                    children.append(
                        (
                            c.get("ref", ""),
                            int(c.get("minOccurs", "1")),
                            float("inf") if mx == "unbounded" else int(mx),
                        )
                    )
            self.elements[el.get("name", "")] = {
                "attrs": attrs,
                "children": children,
                "text": ct is None or ct.get("mixed") == "true",
            }

    def validate(self, el: ET.Element, path: str = "") -> list[str]:
        where = f"{path}/{el.tag}"
        decl = self.elements.get(el.tag)
        if decl is None:
            return [f"{where}: element not in the schema"]
        problems = []
        for name, value in el.attrib.items():
            if name not in decl["attrs"]:
                problems.append(f"{where}: attribute {name!r} not allowed")
                continue
            typ = decl["attrs"][name][0]
            if typ == "xs:int" and not re.fullmatch(r"-?[0-9]+", value):
                problems.append(f"{where}@{name}: {value!r} is not xs:int")
            elif typ in self.patterns and not re.fullmatch(self.patterns[typ], value):
                problems.append(f"{where}@{name}: {value!r} does not match {typ}")
        for name, (_, required) in decl["attrs"].items():
            if required and name not in el.attrib:
                problems.append(f"{where}: required attribute {name!r} missing")
        if not decl["text"] and (el.text or "").strip():
            problems.append(f"{where}: text not allowed")
        order = [c[0] for c in decl["children"]]
        last = -1
        counts: dict[str, int] = {}
        for child in el:
            if child.tag not in order:
                problems.append(f"{where}: child <{child.tag}> not allowed")
                continue
            idx = order.index(child.tag)
            if idx < last:
                problems.append(f"{where}: <{child.tag}> out of order")
            last = max(last, idx)
            counts[child.tag] = counts.get(child.tag, 0) + 1
            problems += self.validate(child, where)
        for tag, lo, hi in decl["children"]:
            n = counts.get(tag, 0)
            if not lo <= n <= hi:
                problems.append(f"{where}: <{tag}> occurs {n} times, allowed {lo}..{hi}")
        return problems
