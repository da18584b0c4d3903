"""Ed25519 signatures over a bundle's manifest (docs/escalations.md, Signing).

The manifest already holds the sha256 and size of every other member, so signing its exact bytes
covers the whole bundle: replay verifies the signature, then every member against the manifest.
Checksums alone prove nothing, since whoever rewrites a member can rewrite the manifest too.

The signature travels as the bundle's second member, `bundle/manifest.sig`, a small JSON
document: `{"alg": "ed25519", "key_id": "ed25519:<16 hex>", "signature": "<base64>"}`. What is
signed is a fixed context line followed by the manifest member's bytes, so a signature made for
something else cannot be replayed here. Ed25519 is deterministic: the same manifest and key give
the same signature, and so the same bundle bytes (a tracker still sees a re-escalation as
already attached).

Keys are PEM files (PKCS#8 private, SubjectPublicKeyInfo public), made with `lab keys generate
DIR` or `openssl genpkey -algorithm ed25519 -out me.key && openssl pkey -in me.key -pubout -out
me.pub`. The team configures them in the engineer's local configuration
(harness/localconfig.py): `bundle_signing_key` for `lab escalate`, `bundle_public_keys` for
`lab replay`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from harness.errors import UsageError

ALG = "ed25519"
CONTEXT = b"labharness-escalation-manifest-v1\n"
MAX_KEY_BYTES = 16 * 1024
MAX_SIG_BYTES = 4096

VERIFIED = "verified"
UNSIGNED = "unsigned"
BAD = "bad signature"
UNKNOWN_KEY = "unknown key"
UNCHECKED = "not checked"  # signed, but no public keys are configured here


@dataclass(frozen=True)
class PublicKey:
    path: str
    key: Ed25519PublicKey
    key_id: str


@dataclass(frozen=True)
class Signer:
    path: str
    key: Ed25519PrivateKey
    key_id: str

    def sign(self, manifest: bytes) -> bytes:
        """The `bundle/manifest.sig` member for these manifest bytes."""
        sig = self.key.sign(CONTEXT + manifest)
        doc = {"alg": ALG, "key_id": self.key_id, "signature": base64.b64encode(sig).decode()}
        return json.dumps(doc, sort_keys=True).encode() + b"\n"


@dataclass(frozen=True)
class Verification:
    """What replay learnt about who made the bundle."""

    status: str  # VERIFIED, UNSIGNED, BAD, UNKNOWN_KEY, UNCHECKED
    key_id: str | None = None
    key_path: str | None = None
    detail: str = ""

    @property
    def verified(self) -> bool:
        return self.status == VERIFIED

    def as_dict(self) -> dict[str, str | None]:
        return {
            "status": self.status,
            "key_id": self.key_id,
            "key": self.key_path,
            "detail": self.detail or None,
        }


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return f"{ALG}:{hashlib.sha256(raw).hexdigest()[:16]}"


def _read_pem(path: Path, what: str) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the {what}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "rb") as f:
            data = f.read(MAX_KEY_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the {what}: {exc.strerror}") from None
    if len(data) > MAX_KEY_BYTES:
        raise UsageError(f"{path}: the {what} is over {MAX_KEY_BYTES} bytes: not a PEM key")
    return data


def load_signer(path: str | Path) -> Signer:
    """The private key `lab escalate` signs with (PEM, unencrypted, Ed25519)."""
    p = Path(path).expanduser()
    data = _read_pem(p, "bundle signing key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise UsageError(
            f"{p}: not an unencrypted PEM private key ({exc})",
            hint="make one with `lab keys generate DIR`",
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise UsageError(
            f"{p}: bundle_signing_key must be an Ed25519 key, not {type(key).__name__}"
        )
    return Signer(str(p), key, key_id(key.public_key()))


def load_public_keys(paths: tuple[str, ...] | list[str]) -> list[PublicKey]:
    """The team's public keys `lab replay` accepts (PEM, Ed25519). A bad one is an error:
    silently dropping it would turn every bundle it signed into an unsigned one."""
    out: list[PublicKey] = []
    for text in paths:
        p = Path(text).expanduser()
        data = _read_pem(p, "bundle public key")
        try:
            key = serialization.load_pem_public_key(data)
        except (ValueError, TypeError) as exc:
            raise UsageError(f"{p}: bundle_public_keys: not a PEM public key ({exc})") from None
        if not isinstance(key, Ed25519PublicKey):
            raise UsageError(
                f"{p}: bundle_public_keys: expected an Ed25519 key, not {type(key).__name__}"
            )
        out.append(PublicKey(str(p), key, key_id(key)))
    return out


def verify(manifest: bytes, signature: bytes | None, keys: list[PublicKey]) -> Verification:
    """Check `signature` (the manifest.sig member, or None) over the manifest's exact bytes."""
    if signature is None:
        return Verification(UNSIGNED, detail="the bundle carries no signature")
    try:
        doc = json.loads(signature[: MAX_SIG_BYTES + 1])
        if not isinstance(doc, dict) or doc.get("alg") != ALG:
            raise ValueError(f"alg is not {ALG!r}")
        kid = str(doc.get("key_id"))
        sig = base64.b64decode(str(doc.get("signature")), validate=True)
    except (ValueError, binascii.Error) as exc:
        return Verification(BAD, detail=f"manifest.sig is malformed ({exc})")
    if not keys:
        return Verification(UNCHECKED, kid, detail="no bundle_public_keys are configured")
    candidates = [k for k in keys if k.key_id == kid] or keys
    for k in candidates:
        try:
            k.key.verify(sig, CONTEXT + manifest)
        except InvalidSignature:
            continue
        return Verification(VERIFIED, k.key_id, k.path)
    if not any(k.key_id == kid for k in keys):
        return Verification(
            UNKNOWN_KEY, kid, detail=f"signed by {kid}, which is none of bundle_public_keys"
        )
    return Verification(
        BAD, kid, detail=f"the signature by {kid} does not match the manifest (altered)"
    )


def generate(folder: Path, name: str = "bundle") -> tuple[Path, Path]:
    """A new key pair: folder/NAME.key (private, mode 600) and folder/NAME.pub. Refuses to
    overwrite either."""
    folder.mkdir(parents=True, exist_ok=True)
    priv_path, pub_path = folder / f"{name}.key", folder / f"{name}.pub"
    for p in (priv_path, pub_path):
        if p.exists() or p.is_symlink():
            raise UsageError(f"{p}: already exists; not overwriting a key")
    key = Ed25519PrivateKey.generate()
    priv = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    pub = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    for p, data, mode in ((priv_path, priv, 0o600), (pub_path, pub, 0o644)):
        fd = os.open(p, flags, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    return priv_path, pub_path
