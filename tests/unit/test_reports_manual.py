"""REPRODUCE.sh and REPRODUCE.md from one step model (harness/reports/manual_steps.py): every
recorded script parses in sh and bash (shellcheck too when installed); the script has what
issue 15 asks (fresh prefix, its own folder, the trap, real impairment and partition commands,
readiness waits, the inventory beside it, no nested quoting); the shell probe helpers decide
what harness.run.probes decides on the same step results; a redacted value stays redacted
unless HIDDEN is given. On the engine: tests/engine/test_reproduce_script.py."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from harness import journal_model as jm
from harness.reports import manual_steps
from harness.reports.manual import render, render_script, write_manual
from harness.run import probes
from harness.scenario.schema import StepProbe
from tests.unit.reportkit import JOURNALS, journal

GOLDEN = sorted((JOURNALS / "manual").glob("*/REPRODUCE.sh"))
SHELLS = [s for s in ("sh", "bash", "dash") if shutil.which(s)]


@pytest.mark.parametrize("script", GOLDEN, ids=[p.parent.name for p in GOLDEN])
@pytest.mark.parametrize("shell", SHELLS)
def test_every_recorded_script_parses(script: Path, shell: str) -> None:
    p = subprocess.run([shell, "-n", str(script)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    if shutil.which("shellcheck"):
        q = subprocess.run(["shellcheck", "-S", "error", str(script)], capture_output=True)
        assert q.returncode == 0, q.stdout


def test_a_broken_script_does_not_parse(tmp_path: Path) -> None:
    """sh -n can fail: the check above is not vacuous."""
    bad = tmp_path / "bad.sh"
    bad.write_text(GOLDEN[0].read_text().replace("\ndone\n", "\n", 1))
    assert subprocess.run(["sh", "-n", str(bad)], capture_output=True).returncode != 0


@pytest.mark.parametrize("script", GOLDEN, ids=[p.parent.name for p in GOLDEN])
def test_the_script_has_what_the_issue_asks(script: Path) -> None:
    text = script.read_text()
    md = (script.parent / "REPRODUCE.md").read_text()
    assert text.startswith("#!/bin/sh\n") and "\nset -eu\n" in text
    assert 'HERE=$(cd "$(dirname "$0")" && pwd)' in text  # runnable from any folder
    assert "PREFIX=${PREFIX:-lab-manual-$$}" in text  # a fresh prefix per execution
    assert "PROJECT=${PROJECT:-/srv/labharness}" in text
    assert "trap finish EXIT" in text and "trap 'exit 130' INT" in text
    assert "lab-manual-" not in text.replace("lab-manual-$$", "")  # no fixed names
    assert "'\"'\"'" not in text and "'\"'\"'" not in md  # no nested quoting
    assert "\nstart " in text  # each node waited for
    for line in text.splitlines():
        if line.strip().startswith("--name "):
            assert line.strip().startswith('--name "$PREFIX-'), line
    # the Markdown carries the same commands
    body = text.split("make_images() {\n", 1)[1].split("\n}\n", 1)[0]
    assert body in md


def test_partitions_impairments_waits_and_files_are_commands() -> None:
    cache = (JOURNALS / "manual" / "cache-partition" / "REPRODUCE.sh").read_text()
    assert "\npartition backend cache\n" in cache and "\nheal backend cache\n" in cache
    assert "start backend command 'curl -fsS" in cache and "start proxy port 80 30" in cache
    assert 'put_file proxy "$PROJECT/fixtures/cache-partition/proxy.conf"' in cache
    assert "iptables -w 5 -I" in manual_steps.HELPERS  # the harness's mechanism, by hand
    lossy = (JOURNALS / "manual" / "lossy-intermittent" / "REPRODUCE.sh").read_text()
    assert "\nloss client dmz 0.100000\n" in lossy and "wait_step step-1 proxy port 80 20" in lossy
    tls = (JOURNALS / "manual" / "tls-ansible" / "REPRODUCE.sh").read_text()
    assert 'ansible-playbook -i "$HERE/REPRODUCE-inventory.yml" -l proxy' in tls
    inv = (JOURNALS / "manual" / "tls-ansible" / "REPRODUCE-inventory.yml").read_text()
    assert "{{ lookup(''env'', ''PREFIX'') }}-proxy" in inv


def test_rates_become_tbf_as_the_harness_sets_them() -> None:
    from harness.engine.impair import tbf_args  # the test may look at the engine

    for rate in ("2mbit", "512kbit", "1gbit", "100kbps", "8000bit"):
        assert manual_steps.tbf(rate) == " ".join(tbf_args(rate))
    lines = manual_steps.link_lines("proxy", "dmz", {"rate": "2mbit", "loss": "5%"})
    assert lines == ["loss proxy dmz 0.050000", "shape proxy dmz " + " ".join(tbf_args("2mbit"))]


# -- the probes in the shell decide what the harness decides ---------------------------------

RESULTS: dict[str, dict[str, Any]] = {
    "request": {"exit_code": 35, "stdout": "", "stderr": "tlsv1 alert protocol version\n"},
    "pool": {"exit_code": 1, "stdout": "opened 5\n", "stderr": "FATAL: too many clients already"},
    "page": {"exit_code": 0, "status": 503, "stdout": '{"error": "x"}', "stderr": ""},
    "ok": {"exit_code": 0, "stdout": "id 42\n", "stderr": ""},
}
PROBES: list[dict[str, Any]] = [
    {"step": "request", "exit_code": 35, "stderr": "alert protocol version"},
    {"step": "request", "exit_code": 35, "stderr": "wrong version number"},
    {"step": "request", "exit_code": [1, 35]},
    {"step": "request", "exit_code": {"not": 0}},
    {"step": "ok", "exit_code": {"not": 0}},
    {"step": "pool", "exit_code": 1, "output": "opened [0-9]+"},
    {"step": "pool", "stdout": r"opened \d+"},
    {"step": "page", "status": 503},
    {"step": "page", "status": [200, 204]},
    {"step": "ok", "stdout": "^id 4"},
    {"step": "missing", "exit_code": 0},
]


def _shell_holds(tmp: Path, probe: dict[str, Any]) -> bool:
    out = tmp / "out"
    out.mkdir(exist_ok=True)
    for sid, r in RESULTS.items():
        (out / f"{sid}.rc").write_text(f"{r['exit_code']}\n")
        (out / f"{sid}.out").write_text(r["stdout"])
        (out / f"{sid}.err").write_text(r["stderr"])
        (out / f"{sid}.secs").write_text("0.5\n")
        if "status" in r:
            (out / f"{sid}.status").write_text(f"{r['status']}\n")
    test = manual_steps.probe_test(probe)
    script = f"{manual_steps.HELPERS}\nOUT={out}\nif {test}\nthen exit 0; else exit 1; fi\n"
    p = subprocess.run(["sh", "-c", script], capture_output=True, text=True)
    assert p.returncode in (0, 1), p.stderr
    return p.returncode == 0


@pytest.mark.parametrize("probe", PROBES, ids=[str(i) for i in range(len(PROBES))])
def test_a_shell_probe_holds_where_the_harness_probe_holds(
    tmp_path: Path, probe: dict[str, Any]
) -> None:
    harness = probes.evaluate(StepProbe.model_validate(probe), RESULTS, {}).held
    assert _shell_holds(tmp_path, probe) == harness


def test_any_and_all_compose_in_the_shell(tmp_path: Path) -> None:
    held, missed = PROBES[0], PROBES[1]
    assert _shell_holds(tmp_path, {"any": [missed, held]})
    assert not _shell_holds(tmp_path, {"all": [missed, held]})
    assert _shell_holds(tmp_path, {"all": [held, {"any": [missed, PROBES[7]]}]})


# -- secrets ---------------------------------------------------------------------------------


def _with_mask() -> jm.Journal:
    data = journal("tls-reproduce")
    plan = {
        "nodes": [
            {"name": "client", "networks": [{"network": "dmz"}], "env": [["PW", "***REDACTED***"]]}
        ],
        "networks": [{"name": "dmz"}],
        "steps": [
            {"kind": "run", "id": "s", "on": "client", "command": "login -p '***REDACTED***'"}
        ],
        "probes": [{"step": "s", "exit_code": 0}],
        "symptom": ["step s: exit_code=0"],
    }
    return jm.parse({**data, "plan": plan})


def test_a_redacted_value_stays_redacted_and_hidden_replaces_it(tmp_path: Path) -> None:
    j = _with_mask()
    text = render_script(j)
    assert "login -p '***REDACTED***'" in text and "HIDDEN=${HIDDEN:-$MASK}" in text
    assert "-e \"$(unmask 'PW=***REDACTED***')\"" in text
    helpers = f"MASK='***REDACTED***'\nHIDDEN=${{HIDDEN:-$MASK}}\n{manual_steps.HELPERS}\n"
    call = helpers + "unmask \"login -p '***REDACTED***' ***REDACTED***\""
    same = subprocess.run(["sh", "-c", call], capture_output=True, text=True)
    assert same.stdout == "login -p '***REDACTED***' ***REDACTED***"
    given = subprocess.run(
        ["sh", "-c", call],
        capture_output=True,
        text=True,
        env={"HIDDEN": "p&w/d", "PATH": "/usr/bin:/bin"},
    )
    assert given.stdout == "login -p 'p&w/d' p&w/d"
    assert "HIDDEN" in render(j)


def test_write_manual_writes_both_files_executable(tmp_path: Path) -> None:
    j = _with_mask()
    md = write_manual(j, tmp_path)
    script = tmp_path / "REPRODUCE.sh"
    assert md.name == "REPRODUCE.md" and script.stat().st_mode & 0o111
    assert subprocess.run(["sh", "-n", str(script)]).returncode == 0
    assert subprocess.run(["sh", "-n", "-c", render_script(jm.Journal())]).returncode == 0


def test_dependents_of_a_node_that_did_not_start_are_not_started(tmp_path: Path) -> None:
    """As the run skips them: proxy may not start (a readiness probe names it), app needs proxy,
    web needs app, db needs nothing; with proxy down only db starts, and each skip says why."""
    nodes = [
        jm.PlanNode(name="proxy"),
        jm.PlanNode(name="app", depends_on=["proxy"]),
        jm.PlanNode(name="web", depends_on=["app"]),
        jm.PlanNode(name="db"),
    ]
    plan = jm.Plan(nodes=nodes, probes=[{"node": "proxy", "state": "exited"}])
    lines = manual_steps.topology(plan, {}).lines
    starts = [x for x in lines if not x.startswith("#")]
    stubs = (
        'say() { echo "$*"; }\n'
        'start() { if [ "$1" = proxy ]; then exit 3; fi; echo "started $1"; }\n'
    )
    script = tmp_path / "t.sh"
    script.write_text(stubs + "\n".join(starts) + "\n")
    out = subprocess.run(["sh", str(script)], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == [
        "node proxy: did not become ready (what the symptom looks for)",
        "started db",  # in dependency order: db needs nothing
        "node app: not started: it depends on proxy, which did not become ready",
        "node web: not started: it depends on app, which did not become ready",
    ], out
    plain = manual_steps.topology(jm.Plan(nodes=nodes), {}).lines  # no readiness probe
    assert not any("first_down" in x for x in plain)


# -- a delay: netem where the kernel has it, else the harness's nfqueue way ------------------


def _delayed(backend: str = "nfqueue") -> jm.Journal:
    """lossy-intermittent with a delay and jitter on the client's link, applied by `backend`."""
    data = journal("lossy-intermittent")
    data["topology"]["impairments"] = [
        {"node": "client", "network": "dmz", "delay": "150ms", "jitter": "20ms", "rate": "2mbit"}
    ]
    for p in data["phases"]:
        if p["phase"] == "impair":
            p["applied"] = [{"node": "client", "network": "dmz", "backend": backend}]
    return jm.parse(data)


def test_a_delay_is_netem_or_the_nfqueue_helper_and_the_script_carries_its_program() -> None:
    lines = manual_steps.link_lines(
        "client", "dmz", {"delay": "150ms", "jitter": "20ms", "rate": "2mbit"}
    )
    assert lines == [
        "delay_link client dmz 150ms 20ms 150 20",
        "rate_link client dmz " + manual_steps.tbf("2mbit"),
    ]
    assert manual_steps.link_lines("c", "n", {"delay": "1s"}) == ["delay_link c n 1s '' 1000 0"]
    text = render_script(_delayed())
    assert "\ndelay_link client dmz 150ms 20ms 150 20\n" in text
    assert "nfq_delay()" in text and "--queue-bypass" in text and "-j NFQUEUE" in text
    program = text.split("<<'LH_NFQDELAY_PY'\n", 1)[1].split("\nLH_NFQDELAY_PY\n", 1)[0]
    assert program + "\n" == manual_steps.NFQDELAY.read_text()  # the harness's own program
    assert 'docker rm -f "$PREFIX-$n-delay-$w"' in text  # down removes the helpers too
    for shell in SHELLS:
        p = subprocess.run([shell, "-n", "-c", text], capture_output=True, text=True)
        assert p.returncode == 0, (shell, p.stderr)
    md = render(_delayed())
    assert "The run delayed with nfqueue." in md and "nfq_delay() {" in md
    assert "nfqdelay.py" in md and "LH_NFQDELAY_PY" not in md


def test_without_a_delay_the_steps_are_as_they_were() -> None:
    j = jm.parse(journal("lossy-intermittent"))
    text = render_script(j)
    assert "nfq_delay" not in text and "LH_NFQDELAY_PY" not in text
    assert "delay_link" not in render(j)


def test_the_shell_delay_helpers_fall_back_to_nfqueue_without_netem(tmp_path: Path) -> None:
    """delay_link with docker stubbed: where `tc ... netem` fails (this kernel), the NFQUEUE
    rule goes in with the helper's queue, after the helper said it bound it; clear_link takes
    the rule and the helper away again."""
    log = tmp_path / "calls"
    stub = tmp_path / "docker"
    stub.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {log}\n'
        'case "$*" in\n'
        '  *"netem"*) exit 2 ;;\n'
        '  *"ifindex"*) echo 7 ;;\n'
        '  *"ip -o -4 addr show"*) echo "2: eth0    inet 10.0.0.2/24 brd 10.0.0.255" ;;\n'
        '  "network inspect"*) echo "P-client 10.0.0.2/24" ;;\n'
        '  "logs"*) echo "ready queue=7" ;;\n'
        '  *"-S LABHARNESS-DELAY"*) echo "-A LABHARNESS-DELAY -i eth0 -m comment'
        ' --comment lh:delay:dmz -j NFQUEUE --queue-num 7 --queue-bypass" ;;\n'
        "esac\n"
    )
    stub.chmod(0o755)
    script = (
        f"PREFIX=P\nNODES=client\nNETWORKS=dmz\nWORK={tmp_path}\n"
        f"{manual_steps.helpers(True)}\n"
        "delay_link client dmz 150ms 20ms 150 20\nclear_link client dmz\n"
    )
    p = subprocess.run(
        ["sh", "-eu", "-c", script],
        capture_output=True,
        text=True,
        env={"PATH": f"{tmp_path}:/usr/bin:/bin"},
    )
    assert p.returncode == 0, p.stderr
    assert "no netem in this kernel" in p.stdout
    calls = log.read_text()
    assert "create --name P-client-delay-dmz --network container:P-client" in calls
    assert "/nfqdelay.py --queue 7 --delay 150 --jitter 20" in calls
    rule = "-A LABHARNESS-DELAY -i eth0 -m comment --comment lh:delay:dmz -j NFQUEUE"
    assert calls.index("start P-client-delay-dmz") < calls.index(rule)
    assert "-t mangle -D LABHARNESS-DELAY -i eth0" in calls
    assert "rm -f P-client-delay-dmz" in calls
