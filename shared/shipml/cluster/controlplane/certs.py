"""Self-made certificates for a loopback control plane, made with the openssl CLI.

A private CA signs the API server's serving certificate (127.0.0.1, localhost and the in-cluster
names) and an admin client certificate in group system:masters; a separate key pair signs
service-account tokens. EC P-256 keys: quick to make, accepted by every component.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from shipml.cluster.shell import require_tool
from shipml.errors import ShipmlError

DAYS = "30"
APISERVER_NAMES = (
    "IP:127.0.0.1", "IP:10.96.0.1", "DNS:localhost", "DNS:kubernetes",
    "DNS:kubernetes.default", "DNS:kubernetes.default.svc",
    "DNS:kubernetes.default.svc.cluster.local",
)


@dataclass(frozen=True)
class Certificates:
    """Paths of everything `make_certificates` wrote."""

    ca_cert: Path
    ca_key: Path
    apiserver_cert: Path
    apiserver_key: Path
    admin_cert: Path
    admin_key: Path
    service_account_key: Path
    service_account_pub: Path
    # The API server's client certificates: to the kubelets (logs, exec, port-forward) and to
    # aggregated API servers such as metrics-server (the front proxy of the aggregation layer).
    kubelet_client_cert: Path | None = None
    kubelet_client_key: Path | None = None
    front_proxy_cert: Path | None = None
    front_proxy_key: Path | None = None


def openssl(*args: str) -> None:
    done = subprocess.run([require_tool("openssl"), *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise ShipmlError(f"openssl {args[0]} failed: {done.stderr.strip().splitlines()[-1:]}")


def new_key(path: Path) -> Path:
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(path))
    path.chmod(0o600)
    return path


def signed_cert(directory: Path, name: str, subject: str, extensions: str, ca: Certificates | None
                ) -> tuple[Path, Path]:
    """A key and a certificate for `subject`, signed by `ca` (self-signed when None)."""
    key, cert = new_key(directory / f"{name}.key"), directory / f"{name}.crt"
    ext = directory / f"{name}.ext"
    ext.write_text(extensions)
    if ca is None:
        openssl("req", "-x509", "-new", "-key", str(key), "-subj", subject, "-days", DAYS,
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
                "-out", str(cert))
    else:
        csr = directory / f"{name}.csr"
        openssl("req", "-new", "-key", str(key), "-subj", subject, "-out", str(csr))
        openssl("x509", "-req", "-in", str(csr), "-CA", str(ca.ca_cert), "-CAkey", str(ca.ca_key),
                "-CAcreateserial", "-days", DAYS, "-extfile", str(ext), "-out", str(cert))
    return key, cert


def make_certificates(directory: Path) -> Certificates:
    """Write a CA, the API server and admin certificates and a service-account key pair."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = signed_cert(directory, "ca", "/CN=shipml-fake-cluster-ca", "", None)
    ca = Certificates(ca_cert, ca_key, *(Path() for _ in range(6)))
    client = ("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
              "extendedKeyUsage=clientAuth\n")
    server_key, server_cert = signed_cert(
        directory, "apiserver", "/CN=kube-apiserver",
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        f"extendedKeyUsage=serverAuth\nsubjectAltName={','.join(APISERVER_NAMES)}\n", ca)
    admin_key, admin_cert = signed_cert(
        directory, "admin", "/O=system:masters/CN=shipml-admin",
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=clientAuth\n", ca)
    kubelet_key, kubelet_cert = signed_cert(directory, "apiserver-kubelet-client",
                                            "/CN=kube-apiserver-kubelet-client", client, ca)
    proxy_key, proxy_cert = signed_cert(directory, "front-proxy-client", "/CN=front-proxy-client",
                                        client, ca)
    sa_key = new_key(directory / "service-account.key")
    sa_pub = directory / "service-account.pub"
    openssl("pkey", "-in", str(sa_key), "-pubout", "-out", str(sa_pub))
    return Certificates(ca_cert, ca_key, server_cert, server_key, admin_cert, admin_key,
                        sa_key, sa_pub, kubelet_cert, kubelet_key, proxy_cert, proxy_key)
