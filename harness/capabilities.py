"""Which Linux capabilities a node may get, and why the others are refused.

One place for the rule that `lab validate` (harness/scenario/validate.py) and the run layer
(harness/run/trust.py, just before the engine creates containers) both apply: a capability
outside localconfig.DEFAULT_CAPABILITIES needs the engineer's own local configuration, never
the scenario. Untrusted runs (bundles, --untrusted) get the defaults only.
"""

from __future__ import annotations

from harness.localconfig import DEFAULT_CAPABILITIES, config_path

# What each capability lets a container do to the machine it runs on (cgroup v1, no AppArmor:
# the engine is all that stands between a node and the host).
REACH: dict[str, str] = {
    "ALL": "grants every capability, SYS_ADMIN included",
    "SYS_ADMIN": "reaches the host (mount, open_by_handle_at, a cgroup's release_agent)",
    "DAC_READ_SEARCH": "reaches the host (open_by_handle_at reads any host file)",
    "SYS_MODULE": "loads code into the host's kernel",
    "SYS_RAWIO": "reaches host memory and I/O ports",
    "SYS_PTRACE": "traces and rewrites other processes (a way out of the container)",
    "SYS_BOOT": "reboots the host",
    "SYS_TIME": "sets the host's clock",
    "SYSLOG": "reads and clears the host kernel's log",
    "BPF": "loads eBPF programs into the host's kernel",
    "PERFMON": "observes the host's kernel and other processes",
    "MAC_ADMIN": "changes the host's security policy",
    "MAC_OVERRIDE": "bypasses the host's security policy",
    "AUDIT_CONTROL": "changes the host's audit rules",
    "LINUX_IMMUTABLE": "changes immutable files on shared mounts",
    "SYS_RESOURCE": "lifts the limits that protect the host from runaway containers",
    "IPC_LOCK": "locks host memory",
    "WAKE_ALARM": "sets alarms that wake the host",
    "BLOCK_SUSPEND": "keeps the host from suspending",
}


def normalise(cap: str) -> str:
    """`cap_sys_admin` and `SYS_ADMIN` name the same capability."""
    c = cap.strip().upper()
    return c[4:] if c.startswith("CAP_") else c


def refused(caps: tuple[str, ...] | list[str], allowed: frozenset[str]) -> list[str]:
    """The capabilities of `caps` outside `allowed`, normalised, in order, once each."""
    out: list[str] = []
    for cap in caps:
        c = normalise(cap)
        if c not in allowed and c not in out:
            out.append(c)
    return out


def why(cap: str, *, untrusted: bool = False) -> str:
    """One sentence: what the capability reaches and how the engineer could allow it."""
    c = normalise(cap)
    reach = REACH.get(c, "is outside the allowlist of capabilities a scenario may ask for")
    if untrusted:
        return (
            f"{c} {reach}: an untrusted run (a bundle, or --untrusted) gets only "
            f"{', '.join(sorted(DEFAULT_CAPABILITIES))}; pass --trust to apply "
            f"{config_path()} allow_capabilities"
        )
    return f"{c} {reach}: allow it in {config_path()} allow_capabilities if you really need it"
