"""Every size limit on a scenario file, in one place.

A scenario file may come from a customer or a bundle (untrusted). These bounds keep `lab
validate` and every loader under 5 s and 300 MB on any input: each one is checked before the
work it bounds is done, and hitting one is a located problem (exit 2) that names the limit.
Documented in docs/scenario-format.md ("Limits"); keep the two in step.
"""

from __future__ import annotations

MAX_FILE_BYTES = 1024 * 1024  # 1 MiB; the largest shipped scenario is under 4 KiB
MAX_DEPTH = 32  # nested mappings/lists; the format itself needs under 10
MAX_YAML_NODES = 10_000  # values, keys and list items, counted after aliases are expanded
MAX_ALIASES = 100  # uses of `*anchor` in one file (billion-laughs bombs use thousands)
MAX_SCALAR_CHARS = 65_536  # one text value
MAX_KEY_CHARS = 200  # one mapping key
MAX_NUMBER_DIGITS = 100  # one integer or decimal number, in characters
MAX_TOPOLOGY_NODES = 64  # containers in one lab
MAX_NETWORKS = 32  # networks in one lab
MAX_MATRIX_AXES = 6  # axes of a matrix (before include/exclude)
MAX_MATRIX_CELLS = 256  # cells of a matrix, computed as the product before expanding
MAX_CHECKED_NODES = 200_000  # cells x YAML nodes that `lab validate` checks (cells cost this)
MAX_FOLDER_FILES = 500  # files under one `files:` folder source
MAX_FOLDER_BYTES = 64 * 1024 * 1024  # their total size
SHOWN_CHARS = 80  # at most this much of an offending value is echoed in a message


def shown(value: object) -> str:
    """`repr(value)`, cut to SHOWN_CHARS: messages never echo a long value back whole."""
    text = repr(value)
    if len(text) <= SHOWN_CHARS:
        return text
    return f"{text[: SHOWN_CHARS - 3]}... ({len(str(value))} characters)"
