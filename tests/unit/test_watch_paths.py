"""Which saves set off a `lab watch` rerun (harness/verbs/watch.py): the scenario, every file
it reads (node files, playbook folders, suites, the customer's evidence, a fix file), and
nothing else (an editor's swap file, the run folders)."""

from __future__ import annotations

import shutil
from pathlib import Path

from harness.scenario.catalog import load_catalog
from harness.scenario.load import load_scenario
from harness.verbs.watch import relevant, watched
from tests.conftest import ROOT


def _project(tmp: Path) -> Path:
    proj = tmp / "p"
    for d in ("labs", "environments"):
        shutil.copytree(ROOT / d, proj / d, ignore=shutil.ignore_patterns("__pycache__"))
    (proj / "fixtures" / "c").mkdir(parents=True)
    (proj / "fixtures" / "c" / "site.conf").write_text("server {}\n")
    (proj / "fixtures" / "c" / "customer.log").write_text("2026-01-01 boot\n")
    (proj / "books").mkdir()
    (proj / "books" / "site.yml").write_text("- hosts: all\n  tasks: []\n")
    (proj / "suites").mkdir()
    (proj / "suites" / "test_web.py").write_text("def test_x(host):\n    pass\n")
    (proj / "s.yaml").write_text(
        "scenario: w\ntopology:\n  networks: {lan: {}}\n  nodes:\n"
        "    web:\n      lab: nginx\n      networks: [lan]\n"
        "      files: {/etc/nginx/sites-available/default: fixtures/c/site.conf}\n"
        "configure:\n  - {playbook: books/site.yml}\n"
        "verify:\n  - suites/test_web.py\n"
        "evidence:\n  - {file: fixtures/c/customer.log, lab: nginx}\n"
    )
    return proj


def test_every_file_the_scenario_reads_is_watched(tmp_path: Path) -> None:
    proj = _project(tmp_path)
    loaded = load_scenario(proj / "s.yaml", root=proj, catalog=load_catalog(proj))
    fix = proj / "fix.yaml"
    files, folders = watched(loaded, proj / "s.yaml", proj, fix)
    want = {
        proj / "s.yaml",
        fix,
        proj / "fixtures/c/site.conf",
        proj / "books/site.yml",
        proj / "suites/test_web.py",
        proj / "fixtures/c/customer.log",
    }
    assert {p.resolve() for p in want} <= files
    assert (proj / "books").resolve() in folders  # a playbook's templates and roles
    saved = [
        str(proj / "fixtures/c/site.conf"),
        str(proj / "fixtures/c/.site.conf.swp"),  # an editor's swap file
        str(proj / "books/templates/x.j2"),
        str(proj / "reports/w/1/journal.json"),  # the run's own output
    ]
    assert relevant(saved, files, folders) == sorted(
        str(p.resolve()) for p in (proj / "books/templates/x.j2", proj / "fixtures/c/site.conf")
    )


def test_a_scenario_that_does_not_load_is_watched_alone(tmp_path: Path) -> None:
    files, folders = watched(None, tmp_path / "broken.yaml", tmp_path, None)
    assert files == {(tmp_path / "broken.yaml").resolve()} and not folders
    assert relevant([str(tmp_path / "broken.yaml")], files, folders) == [
        str((tmp_path / "broken.yaml").resolve())
    ]
