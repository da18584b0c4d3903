"""An engineer's hands in a kept lab, against the real engine through the real CLI (issue 15
point 5): `lab exec` with a misspelt node is bad input with a did-you-mean (exit 2), `lab exec`
passes stdin through, `lab cp` copies files and folders into a node and out of it."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LAB, ROOT, lab_env, nothing_left, run_json, run_lab

SCEN = "tests/engine/scenarios/three-nodes.yaml"


@pytest.fixture(scope="module")
def kept(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    reports = tmp_path_factory.mktemp("hands-on-reports")
    run = run_json("up", SCEN, reports=reports)["run"]
    try:
        yield run, reports
    finally:
        run_lab("down", run, reports=reports)


def _lab(
    reports: Path, *args: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*LAB, *args],
        cwd=ROOT,
        env=lab_env(reports),
        input=stdin if stdin is not None else b"",
        capture_output=True,
        timeout=120,
    )


def test_a_misspelt_node_is_bad_input_with_a_suggestion(kept: tuple[str, Path]) -> None:
    run, reports = kept
    p = _lab(reports, "exec", run, "bb", "--", "true")
    assert p.returncode == 2, p.stderr
    err = p.stderr.decode()
    assert "unknown node 'bb'" in err and "did you mean 'b'?" in err, err
    assert "Traceback" not in err and "docker" not in err.lower()
    p = _lab(reports, "cp", run, "zz:/etc/hostname", ".")
    assert p.returncode == 2 and "unknown node 'zz'" in p.stderr.decode()


def test_exec_passes_stdin_through(kept: tuple[str, Path]) -> None:
    run, reports = kept
    blob = b"".join(b"line %d\n" % i for i in range(200_000))  # ~2.3 MB: more than any pipe
    p = _lab(reports, "exec", run, "a", "--", "sh", "-c", "wc -l; echo done >&2", stdin=blob)
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode().strip() == "200000"
    assert p.stderr.decode().strip() == "done"
    # a command that prints as much as it reads (cat) does not deadlock
    p = _lab(reports, "exec", run, "a", "--", "cat", stdin=blob)
    assert p.returncode == 0 and p.stdout == blob
    # nothing piped: the command sees end of file at once
    p = _lab(reports, "exec", run, "a", "--", "sh", "-c", "cat; exit 4")
    assert (p.returncode, p.stdout) == (4, b"")


def test_cp_in_and_out(kept: tuple[str, Path], tmp_path: Path, docker_client: Any) -> None:
    run, reports = kept
    src = tmp_path / "conf"
    (src / "sub").mkdir(parents=True)
    (src / "app.conf").write_text("level=debug\n")
    (src / "sub" / "run.sh").write_text("#!/bin/sh\necho ran\n")
    (src / "sub" / "run.sh").chmod(0o755)

    # a folder into a folder that does not exist yet: parents are created, it takes the name
    p = _lab(reports, "cp", run, str(src), "a:/opt/new/place", "--json")
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert (r["direction"], r["files"], r["dest"]) == ("in", 2, "a:/opt/new/place")
    out = _lab(
        reports,
        "exec",
        run,
        "a",
        "--",
        "sh",
        "-c",
        "cat /opt/new/place/app.conf; /opt/new/place/sub/run.sh",
    )
    assert out.stdout.decode() == "level=debug\nran\n", out.stderr
    # a file into an existing folder: under its own name
    assert _lab(reports, "cp", run, str(src / "app.conf"), "a:/etc/").returncode == 0
    assert _lab(reports, "exec", run, "a", "--", "cat", "/etc/app.conf").stdout == b"level=debug\n"

    # out: a file to a new name, a folder into an existing folder
    got = tmp_path / "got"
    got.mkdir()
    p = _lab(reports, "cp", run, "a:/etc/debian_version", str(got / "version"))
    assert p.returncode == 0, p.stderr
    assert (got / "version").read_text().startswith("12")
    p = _lab(reports, "cp", run, "a:/opt/new/place", str(got))
    assert p.returncode == 0, p.stderr
    assert (got / "place" / "app.conf").read_text() == "level=debug\n"
    assert (got / "place" / "sub" / "run.sh").read_text() == "#!/bin/sh\necho ran\n"
    # out to a path that does not exist yet: the folder takes that name
    p = _lab(reports, "cp", run, "a:/opt/new/place", str(got / "renamed"))
    assert p.returncode == 0 and (got / "renamed" / "sub" / "run.sh").is_file()

    # bad input: a missing path either side, two local paths
    p = _lab(reports, "cp", run, "a:/no/such/file", str(got))
    assert p.returncode == 2 and "no such file or folder" in p.stderr.decode()
    p = _lab(reports, "cp", run, str(tmp_path / "absent"), "a:/tmp/")
    assert p.returncode == 2 and "no such file or folder" in p.stderr.decode()
    p = _lab(reports, "cp", run, str(src), str(got))
    assert p.returncode == 2 and "exactly one side in a node" in p.stderr.decode()


def test_the_lab_goes_when_downed(kept: tuple[str, Path], docker_client: Any) -> None:
    run, reports = kept
    run_lab("down", run, reports=reports, check=True)
    assert nothing_left(docker_client, run)
