"""``shipml keys new``, ``shipml sign`` and ``shipml tls cert``: the author's side of signed bundles and TLS."""

from __future__ import annotations

from pathlib import Path

import typer

keys_app = typer.Typer(help="Signing keys for bundles (ed25519).", no_args_is_help=True)


@keys_app.command("new")
def keys_new(
    name: str = typer.Argument(..., help="key name, e.g. your name or team (becomes NAME.key / NAME.pub)"),
    out: Path = typer.Option(Path("keys"), "--out", help="folder for the key pair"),
    force: bool = typer.Option(False, "--force", help="replace an existing key pair of that name"),
) -> None:
    """Make a key pair: NAME.key stays with you (mode 0600), NAME.pub goes to the trusted keys folder."""
    from shipml.signing import new_keypair

    pair = new_keypair(name, out, force=force)
    typer.echo(f"private key {pair.private_path} (keep it secret), public key {pair.public_path}, "
               f"key id {pair.key_id}")


def sign(
    bundle: Path = typer.Argument(..., help="a bundle folder"),
    key: Path = typer.Option(..., "--key", help="private key file made by 'shipml keys new'"),
    signer: str = typer.Option(None, "--signer", help="name recorded as the signer (default: the key's name)"),
) -> None:
    """Verify BUNDLE's hashes, then sign its manifest (SHA256SUMS) with KEY: writes SIGNATURE.json."""
    from shipml.bundle import sign_bundle

    sig = sign_bundle(bundle, key, signer)
    typer.echo(f"{bundle}: signed by {sig.signer} (key {sig.key_id}) at {sig.signed_at}")




tls_app = typer.Typer(help="Certificates for local HTTPS.", no_args_is_help=True)


@tls_app.command("cert")
def tls_cert(
    out: Path = typer.Option(Path("certs"), "--out", help="folder for ca.pem, server.pem, server.key"),
    host: list[str] = typer.Option(["localhost", "127.0.0.1"], "--host", help="names the certificate is for"),
    days: int = typer.Option(30, "--days", min=1, max=825),
) -> None:
    """Make a private CA and a server certificate for HOSTs (clients trust ca.pem)."""
    from shipml.tls import make_local_certificate

    paths = make_local_certificate(out, tuple(host), days)
    typer.echo(f"server: SHIPML_TLS_CERT={paths.cert} SHIPML_TLS_KEY={paths.key}; clients trust {paths.ca}")


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
    app.command("sign")(sign)
    app.add_typer(tls_app, name="tls")
