"""Security of the running containers (issue 17): the compose `api` service inspected while it runs,
and the API key given at run time found in no image layer and no `docker history`.

The engine reports what the kernel enforces: capabilities (``CapEff`` of PID 1), ``NoNewPrivs``, a
read-only root, ``noexec`` /tmp, the pids cap. A hardening line deleted from docker-compose.yml fails here.
"""

from __future__ import annotations

import io
import os
import re
import secrets
import shutil
import subprocess
import sys
import tarfile
import time
import uuid
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.docker, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]


def _compose() -> list[str]:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    if shutil.which("docker-compose"):
        return [shutil.which("docker-compose")]
    pytest.skip("neither `docker compose` nor docker-compose is installed (.ci/setup.d/20-docker.sh, 25-compose-v2.sh)")


@pytest.fixture
def running_api(client, serving_image, free_port):
    """`docker compose up -d api` with a random API key passed at run time; always taken down."""
    key = "run-time-key-" + secrets.token_hex(16)
    project = f"shipmlsec{uuid.uuid4().hex[:10]}"
    env = {**os.environ, "SHIPML_SERVING_IMAGE": serving_image, "SHIPML_API_PORT": str(free_port),
           "SHIPML_API_KEY": key}
    base = [*_compose(), "-f", str(REPO_ROOT / "docker-compose.yml"), "-p", project]

    def run(*args, check=True):
        done = subprocess.run([*base, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=180)
        if check and done.returncode:
            raise AssertionError(done.stdout + done.stderr)
        return done

    try:
        run("up", "-d", "--no-build", "api")
        container = client.containers.get(run("ps", "-q", "api").stdout.strip())
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            container.reload()
            health = (container.attrs["State"].get("Health") or {}).get("Status")
            if health == "healthy":
                break
            assert health != "unhealthy" and container.status != "exited", container.logs(tail=20).decode()
            time.sleep(0.5)
        yield container, key, free_port
    finally:
        run("down", "--volumes", "--timeout", "5", check=False)


def _exec(container, *cmd: str) -> tuple[int, str]:
    code, out = container.exec_run(list(cmd), demux=False)
    return code, (out or b"").decode(errors="replace")


def test_the_running_api_has_no_capabilities_no_new_privileges_and_a_read_only_root(running_api):
    container, key, port = running_api
    host = container.attrs["HostConfig"]
    assert host["CapDrop"] == ["ALL"] and not host["CapAdd"]
    assert "no-new-privileges:true" in host["SecurityOpt"]
    assert host["ReadonlyRootfs"] is True and host["Privileged"] is False
    assert "noexec" in host["Tmpfs"]["/tmp"] and host["PidsLimit"] == 128
    assert container.attrs["Config"]["User"] == "10001:10001"
    # What the kernel enforces on the server process itself:
    _, status = _exec(container, "cat", "/proc/1/status")
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    assert int(fields["CapEff"], 16) == 0 and int(fields["CapPrm"], 16) == 0 and fields["NoNewPrivs"].strip() == "1"
    code, out = _exec(container, "python", "-c", "open('/opt/venv/evil', 'w')")
    assert code != 0 and "Read-only file system" in out
    code, out = _exec(container, "sh", "-c", "cp /bin/true /tmp/t && /tmp/t")
    assert code != 0 and "Permission denied" in out  # noexec /tmp: nothing dropped there can run
    # ...and it still serves, with the key.
    url = f"http://127.0.0.1:{port}"
    assert httpx.get(f"{url}/v2/health/ready", timeout=10).status_code == 200
    assert httpx.get(f"{url}/v2/models/fraud-lr", timeout=10).status_code == 401
    assert httpx.get(f"{url}/v2/models/fraud-lr", headers={"X-API-Key": key}, timeout=10).status_code == 200


def _image_bytes(client, image: str) -> list[tuple[str, bytes]]:
    """Every file of every layer of ``image`` (docker save), plus the image config and manifest."""
    out = []
    with tarfile.open(fileobj=io.BytesIO(b"".join(client.images.get(image).save()))) as saved:
        for member in saved.getmembers():
            if not member.isfile():
                continue
            data = saved.extractfile(member).read()
            if member.name.endswith("layer.tar"):
                with tarfile.open(fileobj=io.BytesIO(data)) as layer:
                    out += [(f"{member.name}:{m.name}", layer.extractfile(m).read())
                            for m in layer.getmembers() if m.isfile()]
            else:
                out.append((member.name, data))
    return out


def _history(image: str) -> str:
    return subprocess.run(["docker", "history", "--no-trunc", "--format", "{{.CreatedBy}}", image],
                          capture_output=True, text=True, check=True, timeout=60).stdout


def test_the_run_time_key_is_in_no_layer_and_no_history(running_api, client, serving_image):
    container, key, _ = running_api
    assert key.encode() not in b"".join(data for _, data in _image_bytes(client, serving_image))
    assert key not in _history(serving_image)
    assert key not in str(client.images.get(serving_image).attrs)
    changed = subprocess.run(["docker", "diff", container.id], capture_output=True, text=True, check=True).stdout
    assert changed.strip() == "", changed  # the container wrote nothing outside its tmpfs


def test_a_key_given_at_build_time_is_found_which_is_why_it_must_not_be(client, serving_image, tmp_path):
    """The weak way (ARG/ENV at build time): the same search finds it, so the test above can fail."""
    from shipml.containers import remove_image

    key = "build-time-key-" + secrets.token_hex(8)
    (tmp_path / "Dockerfile").write_text(f"FROM {serving_image}\nARG API_KEY\nRUN test -n \"$API_KEY\"\n")
    tag = f"shipml-test-leaky-{uuid.uuid4().hex[:8]}:1"
    try:
        client.images.build(path=str(tmp_path), tag=tag, buildargs={"API_KEY": key}, rm=True)
        assert key in _history(tag)
    finally:
        remove_image(tag)


DIGEST_FIELD = re.compile(r'"(?:id|parent|container|fingerprint|[\w.-]*sha256[\w.-]*)"'
                          r'\s*:\s*"(?:sha256:)?([0-9a-f]{64})"')
DIGEST_PREFIXED = re.compile(r"sha256:([0-9a-f]{64})")
DIGEST_SUMS_LINE = re.compile(r"^([0-9a-f]{64})  \S", re.M)


def _digests(root: Path) -> set[str]:
    """Hex values that name content: docker's layer ids and digests, the bundles' recorded hashes."""
    found: set[str] = set()
    for path in root.iterdir():
        text = path.read_text(errors="replace")
        for pattern in (DIGEST_FIELD, DIGEST_PREFIXED, DIGEST_SUMS_LINE):
            found.update(pattern.findall(text))
    # Docker's short ids (a digest's first 12 digits) name content too: the legacy builder records its build
    # container's id as container_config.Hostname, flagged whenever those 12 digits happen to be varied enough.
    return found | {digest[:12] for digest in found}


def _scan_image_for_secrets(client, image: str, tmp: Path) -> list[dict]:
    """detect-secrets (Yelp, PyPI; offline) over the image's config, history and the kit's own files."""
    import json

    root = tmp / "image"
    root.mkdir(parents=True)
    kept = 0
    for name, data in _image_bytes(client, image):
        inner = name.split(":", 1)[-1]
        config = not name.endswith("layer.tar") and ":" not in name
        if config or inner.startswith(("opt/app/", "models/", "etc/", "tmp/", "root/", "home/")):
            if b"\0" in data[:1024] or len(data) > 2 << 20:
                continue  # binaries and big files: not where a pasted key hides
            out = root / f"{kept:05d}-{Path(inner).name}"
            out.write_bytes(data)
            kept += 1
    (root / "history.txt").write_text(_history(image))
    # The image's environment as shell assignments, the form detect-secrets' keyword and entropy rules read.
    env = client.images.get(image).attrs["Config"].get("Env") or []
    (root / "env.sh").write_text("".join(f'export {e.split("=", 1)[0]}="{e.split("=", 1)[-1]}"\n' for e in env))
    scanner = shutil.which("detect-secrets", path=str(Path(sys.executable).parent)) or shutil.which("detect-secrets")
    assert scanner, "detect-secrets is not installed (a dev dependency: make install)"
    # Content digests are high-entropy hex by design: the layer ids, diff ids and the bundles' own hashes are
    # excluded by exact value (a key elsewhere, even a 64-hex one, is still flagged).
    digests = sorted(_digests(root))
    exclude = ["--exclude-secrets", "^(sha256:)?(" + "|".join(digests) + ")$"] if digests else []
    # Scan "." from inside the folder: given an absolute path outside its working directory, detect-secrets 1.5
    # reports nothing at all (that made this scan unable to fail).
    done = subprocess.run([scanner, "scan", "--all-files", *exclude, "."], cwd=root, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    return [dict(finding, file=Path(f).name) for f, found in json.loads(done.stdout)["results"].items()
            for finding in found]


def test_detect_secrets_finds_nothing_in_the_serving_image(client, serving_image, tmp_path):
    findings = _scan_image_for_secrets(client, serving_image, tmp_path)
    assert findings == [], findings


def test_detect_secrets_does_flag_a_key_baked_into_an_image(client, serving_image, tmp_path):
    from shipml.containers import remove_image

    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text(
        f"FROM {serving_image}\nENV SHIPML_API_KEY={secrets.token_hex(20)}\n")
    tag = f"shipml-test-baked-{uuid.uuid4().hex[:8]}:1"
    try:
        client.images.build(path=str(tmp_path / "ctx"), tag=tag, rm=True)
        findings = _scan_image_for_secrets(client, tag, tmp_path / "scan")
        assert findings, "detect-secrets missed a 40-hex-digit key in ENV"
    finally:
        remove_image(tag)
