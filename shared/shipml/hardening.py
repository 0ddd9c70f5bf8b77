"""Read a compose service the way an attacker would: what would help them escape or steal?

:func:`audit_service` lists the holes of one ``docker-compose.yml`` service as one line each, with the
fix; an empty list means it holds what ``tests/containers/test_docker_hardening.py`` proves on the
kit's own ``api`` service. Notebook 08 runs it on a deliberately weak service and on the kit's file,
lab 08 asks for a fixed service. It reads plain dicts (``yaml.safe_load``); nothing is started.
"""

from __future__ import annotations

import re
from typing import Any

# Environment variables whose value is a secret: a literal value there is in the compose file (and
# in git, and in `docker inspect`); take it from the caller's environment or a file instead.
SECRET_NAMES = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD)$", re.IGNORECASE)
DANGEROUS_MOUNTS = ("/var/run/docker.sock", "/run/docker.sock", "/proc", "/sys", "/etc", "/")

WEAK_API_SERVICE: dict[str, Any] = {
    "image": "shipml-serving:0.1.0",
    "ports": ["8080:8080"],
    # the lesson's deliberately leaked key (a made-up value): the scanners are told it is known
    "environment": {"SHIPML_API_KEY": "hunter2-prod-key", "SHIPML_LOG_LEVEL": "info"},  # pragma: allowlist secret
    "user": "root",
    "privileged": True,
    "cap_add": ["SYS_ADMIN"],
    "volumes": ["/var/run/docker.sock:/var/run/docker.sock"],
    "healthcheck": {"test": ["CMD", "python", "-c", "import urllib.request; urllib.request.urlopen("
                             "'http://127.0.0.1:8080/v2/health/ready', timeout=2)"]},
}


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def audit_service(service: dict[str, Any]) -> list[str]:
    """Every hole of one compose service, each as ``what: why; fix`` (empty: none found)."""
    problems: list[str] = []
    if service.get("privileged"):
        problems.append("privileged: the container is root on the host in all but name; remove it")
    if str(service.get("user", "")).split(":")[0] in ("root", "0"):
        problems.append("user: runs as root; drop the line (the image runs as uid 10001)")
    if "ALL" not in [str(c).upper() for c in service.get("cap_drop") or []]:
        problems.append("cap_drop: Linux capabilities kept; add cap_drop: [ALL] (the server needs none)")
    if service.get("cap_add"):
        problems.append(f"cap_add: {', '.join(map(str, service['cap_add']))} given back; remove cap_add")
    if not any(str(o).replace(" ", "") in ("no-new-privileges:true", "no-new-privileges")
               for o in service.get("security_opt") or []):
        problems.append("security_opt: setuid binaries can still raise privileges; add no-new-privileges:true")
    if service.get("read_only") is not True:
        problems.append("read_only: the root filesystem is writable (an attacker can drop tools); "
                        "read_only: true with a tmpfs for /tmp")
    for port in service.get("ports") or []:
        text = str(port)
        if text.count(":") < 2 and not text.startswith("127.0.0.1:"):
            problems.append(f"ports: {text} listens on every interface of the host; bind 127.0.0.1:HOST:8080")
    for name, value in _env(service).items():
        if SECRET_NAMES.search(name) and value and not value.startswith("${"):
            problems.append(f"environment: {name} is written in the file (git, `docker inspect`); "
                            f"use {name}: ${{{name}}} or a secrets file")
    for volume in service.get("volumes") or []:
        source = str(volume).split(":")[0]
        if source in DANGEROUS_MOUNTS:
            problems.append(f"volumes: {source} mounted (the docker socket is root on the host); remove it")
    return problems
