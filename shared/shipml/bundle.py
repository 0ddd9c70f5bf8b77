"""Model bundles: a folder with the model file, ``metadata.json`` and ``SHA256SUMS``.

Why the hashes: a scikit-learn model is a pickle, and unpickling *runs code*. A bundle is therefore
checked before anything in it is loaded: every file must match the sha256 recorded when it was made,
and the libraries must be the versions it was made with. ``SHA256SUMS`` uses the format of the
``sha256sum`` tool, so ``sha256sum -c SHA256SUMS`` checks a bundle by hand too.

Hashes prove a bundle was not changed by accident or by a careless edit; they do not prove who made
it (anyone who can change the model can rewrite the sums). :mod:`shipml.signing` adds who: an ed25519
signature over ``SHA256SUMS`` (``SIGNATURE.json``), required by :func:`verify_bundle` whenever trusted
public keys are configured. Only the standard library is used here (``cryptography`` is imported only
when signatures are checked), so the edge runtime can verify bundles.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shipml import __version__
from shipml.errors import BundleError
from shipml.schema import FeatureSchema

METADATA_FILE = "metadata.json"
SUMS_FILE = "SHA256SUMS"
SIGNATURE_FILE = "SIGNATURE.json"  # written by shipml.signing; it signs SHA256SUMS, so it is not listed there


@dataclass
class BundleMetadata:
    """What a bundle says about itself; ``metadata.json`` is this, as JSON."""

    name: str
    version: int
    backend: str  # "sklearn" or "onnx": which predictor class loads it
    model_file: str
    model_kind: str  # lr, hgb, mlp, ...
    schema: FeatureSchema
    class_labels: list[int]
    class_names: list[str]
    metrics: dict[str, float] = field(default_factory=dict)
    training_data: dict[str, Any] = field(default_factory=dict)
    libraries: dict[str, str] = field(default_factory=dict)
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    extra: dict[str, Any] = field(default_factory=dict)
    # fraud probability at or above which the label is the positive class (None: the most probable class);
    # chosen for the use case's costs (notebook 01, shipml.thresholds), used by every Predictor.predict
    decision_threshold: float | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["schema"] = self.schema.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BundleMetadata:
        d = dict(d)
        d["schema"] = FeatureSchema.from_dict(d["schema"])
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def python_version() -> str:
    return ".".join(map(str, sys.version_info[:3]))


def write_bundle(directory: str | Path, metadata: BundleMetadata, files: dict[str, bytes] | None = None) -> Path:
    """Write ``metadata.json`` (and any ``files`` given as bytes) then hash every file in the folder.

    The model file itself may already be in ``directory`` (written by joblib or onnx); it is hashed
    like the rest. Nothing outside the folder is touched.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    metadata.libraries.setdefault("python", python_version())
    metadata.libraries.setdefault("shipml", __version__)
    for name, content in (files or {}).items():
        (directory / name).write_bytes(content)
    (directory / METADATA_FILE).write_text(json.dumps(metadata.to_dict(), indent=2) + "\n")
    if not (directory / metadata.model_file).exists():
        raise BundleError(f"{directory}: model file {metadata.model_file} was not written")
    sums = [
        f"{sha256_file(p)}  {p.name}"
        for p in sorted(directory.iterdir())
        if p.is_file() and p.name not in (SUMS_FILE, SIGNATURE_FILE)
    ]
    (directory / SIGNATURE_FILE).unlink(missing_ok=True)  # re-written content: an old signature is void
    (directory / SUMS_FILE).write_text("\n".join(sums) + "\n")
    return directory


def verify_bundle(directory: str | Path, *, trusted_keys: Any = None) -> BundleMetadata:
    """Check the signature (when keys are trusted), every hash, then read the metadata.

    ``trusted_keys``: a folder of trusted ``*.pub`` keys (or a :class:`shipml.signing.TrustedKeys`)
    makes a valid signature by one of them mandatory; ``None`` takes the folder from
    ``SHIPML_TRUSTED_KEYS`` (unset: no signature needed); ``False`` skips the signature check. This is
    the one place every loader (server, batch, edge) passes through. Raises :class:`BundleError` with
    one clear line.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise BundleError(f"{directory}: no such bundle directory")
    sums_path = directory / SUMS_FILE
    if not sums_path.exists():
        raise BundleError(f"{directory}: not a model bundle ({SUMS_FILE} is missing)")
    manifest = sums_path.read_bytes()
    if trusted_keys is None:
        trusted_keys = os.environ.get("SHIPML_TRUSTED_KEYS", "").strip() or False
    if trusted_keys is not False:
        from shipml import signing  # imports cryptography: only when signatures are required

        signing.verify_signature(directory, signing.trusted_keys(trusted_keys), manifest)
    listed: dict[str, str] = {}
    for line in manifest.decode("utf-8", "replace").splitlines():
        if line.strip():
            digest, _, name = line.partition("  ")
            listed[name.strip()] = digest.strip()
    for name, digest in listed.items():
        path = directory / name
        if not path.is_file():
            raise BundleError(f"{directory}: {name} is listed in {SUMS_FILE} but missing")
        if sha256_file(path) != digest:
            raise BundleError(
                f"{directory}: {name} does not match its sha256 (the bundle was modified after it "
                "was made); refusing to load it"
            )
    on_disk = {p.name for p in directory.iterdir() if p.is_file()}
    unlisted = sorted(on_disk - set(listed) - {SUMS_FILE, SIGNATURE_FILE})
    if unlisted:
        raise BundleError(f"{directory}: files not covered by {SUMS_FILE}: {', '.join(unlisted)}")
    if METADATA_FILE not in listed:
        raise BundleError(f"{directory}: {METADATA_FILE} is not covered by {SUMS_FILE}")
    try:
        metadata = BundleMetadata.from_dict(json.loads((directory / METADATA_FILE).read_text()))
    except (ValueError, KeyError, TypeError) as exc:
        raise BundleError(f"{directory}: {METADATA_FILE} is not valid bundle metadata ({exc})") from None
    if metadata.model_file not in listed:
        raise BundleError(f"{directory}: model file {metadata.model_file} is not covered by {SUMS_FILE}")
    return metadata


def sign_bundle(directory: str | Path, private_key: str | Path, signer: str | None = None):
    """Verify every hash, then sign the manifest with an ed25519 ``private_key`` (:mod:`shipml.signing`).

    Returns the :class:`shipml.signing.Signature` written to ``SIGNATURE.json``; a bundle that does not
    verify is refused, so a tampered bundle is never blessed.
    """
    from shipml import signing  # cryptography: only when signing

    verify_bundle(directory, trusted_keys=False)
    return signing.write_signature(directory, private_key, signer)


def read_metadata(directory: str | Path) -> BundleMetadata:
    """Metadata of a verified bundle (hashes checked; library versions are the loader's job)."""
    return verify_bundle(directory)


def require_versions(directory: str | Path, metadata: BundleMetadata, installed: dict[str, str]) -> None:
    """Refuse a bundle whose recorded library versions differ from the installed ones."""
    wrong = [
        f"{lib} {metadata.libraries.get(lib, '(not recorded)')} (installed: {have})"
        for lib, have in installed.items()
        if metadata.libraries.get(lib) != have
    ]
    if wrong:
        raise BundleError(
            f"{directory}: made with {', '.join(wrong)}; loading a model under other library "
            "versions can fail or silently change predictions: retrain it, or install those versions"
        )
