"""Lab 08 — secure it: sign a bundle, refuse what the trusted keys did not sign, fix a weak service.

The collectors run in the student's kernel and build their own test cases (fresh keys, tampered
copies) in a temporary folder, so an answer cannot be tuned to fixed inputs. What the grader
compares with (the lab bundle's training fingerprint) is in ``shipml.grading.keys.lab08``.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

from shipml.checks import Context, Question, Unanswered

ROWS = 5_000
CASES = ("signed_by_trusted_key", "unsigned", "signed_by_stranger", "model_changed_after_signing",
         "metadata_edited_after_signing")


def lab_bundle(out: str | Path, seed: int) -> Path:
    """The bundle the lab hands out: logistic regression on ``ROWS`` seeded transactions."""
    from shipml.data import make_transactions
    from shipml.models import train_bundle

    return train_bundle(make_transactions(ROWS, seed=seed), "lr", Path(out), seed=seed)


# ---- 1. sign --------------------------------------------------------------------------------------

def collect_signed(answer: Any, ctx: Context) -> dict:
    from shipml.signing import TrustedKeys, verify_signature

    if answer is None:
        raise Unanswered()
    bundle, trusted = (Path(p) for p in answer)
    sig = verify_signature(bundle, TrustedKeys.from_dir(trusted))
    from shipml.bundle import verify_bundle

    metadata = verify_bundle(bundle, trusted_keys=trusted)
    return {"signer": sig.signer, "trusted_name": sig.trusted_name or "", "key_id": sig.key_id,
            "fingerprint": metadata.training_data.get("fingerprint", ""),
            "private_files": sorted(p.name for p in trusted.iterdir() if p.suffix == ".key"
                                    or b"PRIVATE KEY" in p.read_bytes()[:64])}


def evaluate_signed(a: dict, ctx: Context) -> tuple[bool, str]:
    if a["private_files"]:
        return False, (f"the trusted folder holds a private key ({', '.join(a['private_files'])}): servers get "
                       "public keys only, the private key stays with the author")
    if not a["trusted_name"]:
        return False, "the signature was not verified against a trusted key"
    return True, f"signed by {a['signer']} (key {a['key_id']}), verified against the trusted folder"


# ---- 2. refuse ------------------------------------------------------------------------------------

def _rehash(bundle: Path) -> None:
    from shipml.bundle import SUMS_FILE, sha256_file

    lines = []
    for line in (bundle / SUMS_FILE).read_text().splitlines():
        _, _, name = line.partition("  ")
        lines.append(f"{sha256_file(bundle / name)}  {name}")
    (bundle / SUMS_FILE).write_text("\n".join(lines) + "\n")


def make_cases(bundle: str | Path, root: str | Path, seed: int) -> tuple[Path, dict[str, Path]]:
    """A trusted keys folder and one bundle per case of :data:`CASES`, made from ``bundle``."""
    from shipml.bundle import SIGNATURE_FILE, sign_bundle
    from shipml.signing import new_keypair

    root = Path(root)
    trusted = root / "trusted"
    trusted.mkdir(parents=True)
    ours = new_keypair("release", root / "private")
    stranger = new_keypair("stranger", root / "private")
    shutil.copy(ours.public_path, trusted)
    cases = {}
    order = list(CASES)
    random.Random(seed).shuffle(order)
    for i, case in enumerate(order):
        path = Path(shutil.copytree(bundle, root / f"bundle-{i}"))
        (path / SIGNATURE_FILE).unlink(missing_ok=True)
        if case != "unsigned":
            sign_bundle(path, stranger.private_path if case == "signed_by_stranger" else ours.private_path)
        if case == "model_changed_after_signing":
            model = path / "model.joblib"
            data = bytearray(model.read_bytes())
            data[len(data) // 2] ^= 1
            model.write_bytes(bytes(data))
            _rehash(path)
        elif case == "metadata_edited_after_signing":
            meta = json.loads((path / "metadata.json").read_text())
            meta["metrics"]["roc_auc"] = 0.999
            (path / "metadata.json").write_text(json.dumps(meta, indent=2) + "\n")
            _rehash(path)
        cases[case] = path
    return trusted, cases


def collect_refuse(fn: Any, ctx: Context) -> dict:
    """Call the student's ``should_load(bundle, trusted_keys) -> bool`` on every case."""
    if fn is None:
        raise Unanswered()
    if not callable(fn):
        raise TypeError("the answer is a function: should_load(bundle, trusted_keys) -> True or False")
    with tempfile.TemporaryDirectory(prefix="lab08-cases-") as tmp:
        source = lab_bundle(Path(tmp) / "source", ctx.seed)
        trusted, cases = make_cases(source, Path(tmp) / "cases", ctx.seed)
        out = {}
        for case, path in cases.items():
            try:
                out[case] = bool(fn(path, trusted))
            except Exception as exc:  # a refusal must be an answer (False), not a crash
                out[case] = f"raised {type(exc).__name__}: {str(exc)[:120]}"
        return out


def evaluate_refuse(a: dict, ctx: Context) -> tuple[bool, str]:
    raised = [c for c, v in a.items() if isinstance(v, str)]
    if raised:
        return False, f"should_load raised for {', '.join(raised)}: catch BundleError and return False"
    wrong = [c for c in CASES if a.get(c) is not (c == "signed_by_trusted_key")]
    if wrong:
        return False, f"wrong answer for: {', '.join(wrong)}"
    return True, "loads only the bundle a trusted key signed; refuses unsigned, foreign and changed ones"


# ---- 3. fix the weak service ----------------------------------------------------------------------

def collect_fixed(service: Any, ctx: Context) -> dict:
    if service is None:
        raise Unanswered()
    if not isinstance(service, dict):
        raise TypeError("the answer is the fixed service as a dict (like WEAK_API_SERVICE)")
    return json.loads(json.dumps(service, default=str))


def evaluate_fixed(service: dict, ctx: Context) -> tuple[bool, str]:
    from shipml.hardening import WEAK_API_SERVICE, audit_service

    holes = audit_service(service)
    if holes:
        return False, f"{len(holes)} hole(s) left, e.g. {holes[0]}"
    if service.get("image") != WEAK_API_SERVICE["image"]:
        return False, "keep the same image: fix the configuration, not the program"
    if not any(str(p).endswith(":8080") for p in service.get("ports") or []):
        return False, "the service must still publish the server's port 8080 (on 127.0.0.1)"
    if "healthcheck" not in service:
        return False, "keep the healthcheck: hardening must not blind the operator"
    return True, "no hole left, and it still serves"


QUESTIONS = [
    Question("signed", 2, collect_signed, evaluate_signed,
             "a server trusts public keys only: which of the two files goes into the trusted folder, and which "
             "one never leaves you?",
             "Sign the bundle and trust its key"),
    Question("refuse", 2, collect_refuse, evaluate_refuse,
             "the kit's loader can already refuse: which argument makes it check signatures, and what does it "
             "raise when it refuses?",
             "Refuse what the trusted keys did not sign"),
    Question("fixed", 2, collect_fixed, evaluate_fixed,
             "audit_service(service) names each hole and what closes it; work on a copy of WEAK_API_SERVICE",
             "Fix the weak service"),
]
