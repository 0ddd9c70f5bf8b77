"""Signed bundles: who made a bundle, proved with an ed25519 signature over its manifest.

A bundle's ``SHA256SUMS`` proves that nothing changed since the sums were written — but whoever can
replace the model can rewrite the sums too. A signature made with a private key that only the model's
author holds closes that gap: the signature covers the *whole manifest* (every file the bundle lists,
``metadata.json`` included, whatever other artifacts a bundle carries) plus who signed and when, so
changing one byte of any listed file, or editing the metadata, breaks either a hash or the signature.

Trust is a folder of public keys (``*.pub``, PEM), set with ``SHIPML_TRUSTED_KEYS`` or
``Settings.trusted_keys``: when it is set, every loader (server, batch engine, edge device, through
:func:`shipml.bundle.verify_bundle`) refuses a bundle that is unsigned, signed by a key not in the
folder, or changed after signing. Two keys in the folder at once is key rotation: sign new bundles
with the new key, remove the old public key once no bundle signed with it is served.

``cryptography`` is imported here only; a loader without trusted keys never imports this module.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from shipml.errors import BundleError, ShipmlError

SIGNATURE_FILE = "SIGNATURE.json"
SUMS_FILE = "SHA256SUMS"  # same name as shipml.bundle.SUMS_FILE (bundle imports this module lazily)
PUBLIC_SUFFIX = ".pub"
PRIVATE_SUFFIX = ".key"
FORMAT = "shipml-bundle-signature/1"
TRUSTED_KEYS_ENV = "SHIPML_TRUSTED_KEYS"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def _crypto():
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:  # the edge image without the extra: say what to install
        raise ShipmlError("signature checks need the 'cryptography' package (pip install cryptography)") from None
    return serialization, ed25519


def key_id(public_raw: bytes) -> str:
    """A short, stable name for a public key: the first 16 hex digits of the sha256 of its raw bytes."""
    return hashlib.sha256(public_raw).hexdigest()[:16]


@dataclass(frozen=True)
class KeyPair:
    """Where ``shipml keys new`` wrote a key pair."""

    name: str
    private_path: Path
    public_path: Path
    key_id: str


def new_keypair(name: str, out_dir: str | Path, *, force: bool = False) -> KeyPair:
    """Write ``NAME.key`` (private, mode 0600) and ``NAME.pub`` (public, PEM) into ``out_dir``.

    The private key never leaves the author's machine; the public key is what servers trust.
    """
    serialization, ed25519 = _crypto()
    if not _NAME.match(name):
        raise ShipmlError(f"key name '{name}' must be letters, digits, '.', '_' or '-' (at most 64)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    private_path, public_path = out / f"{name}{PRIVATE_SUFFIX}", out / f"{name}{PUBLIC_SUFFIX}"
    for p in (private_path, public_path):
        if p.exists() and not force:
            raise ShipmlError(f"{p} exists; pick another name or pass --force to replace it")
    private = ed25519.Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    os.chmod(private_path, 0o600)
    public = private.public_key()
    public_path.write_bytes(public.public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo))
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return KeyPair(name, private_path, public_path, key_id(raw))


def _load_private(path: Path):
    serialization, ed25519 = _crypto()
    if not path.is_file():
        raise ShipmlError(f"{path}: no such private key file (make one with 'shipml keys new NAME')")
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError):
        raise ShipmlError(f"{path}: not an unencrypted PEM private key") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise ShipmlError(f"{path}: not an ed25519 key (shipml signs with ed25519 only)")
    return key


def _raw_public(key) -> bytes:
    serialization, _ = _crypto()
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass(frozen=True)
class TrustedKeys:
    """The public keys a loader accepts, by key id, each with the name of its file."""

    folder: Path
    keys: dict[str, tuple[str, object]]  # key id -> (name, Ed25519PublicKey)

    @classmethod
    def from_dir(cls, folder: str | Path) -> TrustedKeys:
        """Every ``*.pub`` in ``folder``; an empty or missing folder is a configuration error."""
        serialization, ed25519 = _crypto()
        folder = Path(folder)
        if not folder.is_dir():
            raise BundleError(f"trusted keys folder {folder} does not exist ({TRUSTED_KEYS_ENV})")
        keys: dict[str, tuple[str, object]] = {}
        for path in sorted(folder.glob(f"*{PUBLIC_SUFFIX}")):
            try:
                key = serialization.load_pem_public_key(path.read_bytes())
            except ValueError:
                raise BundleError(f"{path}: not a PEM public key") from None
            if not isinstance(key, ed25519.Ed25519PublicKey):
                raise BundleError(f"{path}: not an ed25519 public key")
            keys[key_id(_raw_public(key))] = (path.stem, key)
        if not keys:
            raise BundleError(f"trusted keys folder {folder} holds no *{PUBLIC_SUFFIX} file: every bundle "
                              "would be refused")
        return cls(folder, keys)


@dataclass(frozen=True)
class Signature:
    """What ``SIGNATURE.json`` says; ``trusted_name`` is set once a trusted key verified it."""

    signer: str
    key_id: str
    signed_at: str
    manifest_sha256: str
    signature: bytes
    trusted_name: str | None = None
    public_key: bytes = b""  # as the signer wrote it: proves nothing about who they are

    def describe(self) -> str:
        who = f"{self.signer} (key {self.key_id})"
        if self.trusted_name:
            return f"signed by {who} on {self.signed_at}: valid, trusted as '{self.trusted_name}'"
        return f"signed by {who} on {self.signed_at} (not checked against trusted keys)"


def _payload(manifest: bytes, signer: str, kid: str, signed_at: str) -> bytes:
    """The exact bytes signed: format, signer, key id, time, and the manifest (SHA256SUMS) itself."""
    head = json.dumps({"format": FORMAT, "signer": signer, "key_id": kid, "signed_at": signed_at,
                       "manifest_sha256": hashlib.sha256(manifest).hexdigest()}, sort_keys=True)
    return head.encode() + b"\n" + manifest


def write_signature(bundle: str | Path, private_key: str | Path, signer: str | None = None) -> Signature:
    """Sign the bundle's manifest with ``private_key`` and write ``SIGNATURE.json``.

    Use :func:`shipml.bundle.sign_bundle`, which verifies the hashes first: signing a bundle whose
    hashes do not match would bless a tampered bundle.
    """
    bundle = Path(bundle)
    key = _load_private(Path(private_key))
    raw = _raw_public(key.public_key())
    kid = key_id(raw)
    signer = signer or Path(private_key).stem
    signed_at = datetime.now(UTC).isoformat(timespec="seconds")
    manifest = (bundle / SUMS_FILE).read_bytes()
    sig = key.sign(_payload(manifest, signer, kid, signed_at))
    doc = {"format": FORMAT, "algorithm": "ed25519", "signer": signer, "key_id": kid, "signed_at": signed_at,
           "manifest_sha256": hashlib.sha256(manifest).hexdigest(),
           "public_key": base64.b64encode(raw).decode(), "signature": base64.b64encode(sig).decode()}
    (bundle / SIGNATURE_FILE).write_text(json.dumps(doc, indent=2) + "\n")
    return read_signature(bundle)


def read_signature(bundle: str | Path) -> Signature | None:
    """The bundle's signature as written (not verified), or None when it is unsigned."""
    path = Path(bundle) / SIGNATURE_FILE
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text())
        if doc.get("format") != FORMAT or doc.get("algorithm") != "ed25519":
            raise ValueError("unknown format")
        return Signature(str(doc["signer"]), str(doc["key_id"]), str(doc["signed_at"]),
                         str(doc["manifest_sha256"]), base64.b64decode(doc["signature"], validate=True),
                         public_key=base64.b64decode(doc.get("public_key", ""), validate=True))
    except (ValueError, KeyError, TypeError):
        raise BundleError(f"{bundle}: {SIGNATURE_FILE} is not a shipml signature; refusing to load it") from None


def verify_signature(bundle: str | Path, trusted: TrustedKeys, manifest: bytes | None = None) -> Signature:
    """Refuse (one :class:`BundleError` line) unless a trusted key signed exactly this manifest.

    ``manifest`` is the ``SHA256SUMS`` content the caller verified the files against (read again if
    not given); the signature check and the hash check must be about the same bytes.
    """
    bundle = Path(bundle)
    if manifest is None:
        manifest = (bundle / SUMS_FILE).read_bytes()
    sig = read_signature(bundle)
    if sig is None:
        raise BundleError(f"{bundle}: the bundle is not signed and trusted keys are configured "
                          f"({trusted.folder}); refusing to load it (sign it with 'shipml sign')")
    entry = trusted.keys.get(sig.key_id)
    if entry is None:
        raise BundleError(f"{bundle}: signed by '{sig.signer}' with key {sig.key_id}, which is not in the "
                          f"trusted keys folder {trusted.folder}; refusing to load it")
    name, public = entry
    from cryptography.exceptions import InvalidSignature

    if hashlib.sha256(manifest).hexdigest() != sig.manifest_sha256:
        raise BundleError(f"{bundle}: {SUMS_FILE} changed after the bundle was signed by '{sig.signer}'; "
                          "refusing to load it")
    try:
        public.verify(sig.signature, _payload(manifest, sig.signer, sig.key_id, sig.signed_at))  # type: ignore[attr-defined]
    except InvalidSignature:
        raise BundleError(f"{bundle}: the signature of '{sig.signer}' does not match the bundle (changed after "
                          "signing); refusing to load it") from None
    return Signature(sig.signer, sig.key_id, sig.signed_at, sig.manifest_sha256, sig.signature, trusted_name=name)


def trusted_keys_from_env() -> Path | None:
    """The trusted keys folder named by ``SHIPML_TRUSTED_KEYS`` (None: signatures are not required)."""
    value = os.environ.get(TRUSTED_KEYS_ENV, "").strip()
    return Path(value) if value else None


_CACHE: dict[tuple[str, float], TrustedKeys] = {}


def trusted_keys(folder: str | Path | TrustedKeys) -> TrustedKeys:
    """A :class:`TrustedKeys` for ``folder``, re-read when the folder changes (a key added or removed)."""
    if isinstance(folder, TrustedKeys):
        return folder
    folder = Path(folder)
    try:
        stamp = folder.stat().st_mtime
    except OSError:
        stamp = -1.0
    key = (str(folder.resolve()), stamp)
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = TrustedKeys.from_dir(folder)
    return _CACHE[key]


def describe_signature(bundle: str | Path, trusted: str | Path | TrustedKeys | None = None) -> str:
    """One line for ``shipml info``: unsigned, signed (checked against the trusted keys when given)."""
    folder = trusted if trusted is not None else trusted_keys_from_env()
    sig = read_signature(bundle)
    if sig is None:
        return "signature: none (unsigned bundle)"
    if folder is None:  # check it against the key it carries: intact, but says nothing about trust
        _, ed25519 = _crypto()
        try:
            embedded = ed25519.Ed25519PublicKey.from_public_bytes(sig.public_key)
        except ValueError:
            return f"signature: {sig.describe()}; it carries no valid public key"
        own = TrustedKeys(Path("(the key in SIGNATURE.json)"), {key_id(sig.public_key): (sig.signer, embedded)})
        verify_signature(bundle, own)
        return (f"signature: signed by {sig.signer} (key {sig.key_id}) on {sig.signed_at}: intact; "
                f"not checked against trusted keys (set {TRUSTED_KEYS_ENV} or --trusted-keys)")
    return f"signature: {verify_signature(bundle, trusted_keys(folder)).describe()}"
