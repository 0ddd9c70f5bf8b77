"""Clear one-line errors when the engine or the base-image tools are missing (no engine needed)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from shipml.cli.docker import app
from shipml.containers import base_image, docker_client, engine_available
from shipml.errors import ShipmlError
from typer.testing import CliRunner


def test_engine_available_says_where_and_why_when_nothing_listens(tmp_path, monkeypatch):
    socket = tmp_path / "no-engine.sock"
    monkeypatch.setenv("DOCKER_HOST", f"unix://{socket}")
    status = engine_available(timeout=2)
    assert not status
    assert str(socket) in status.reason
    assert "dockerd is not running" in status.reason
    assert "\n" not in status.reason


def test_docker_client_raises_a_one_line_shipml_error_without_engine(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'none.sock'}")
    with pytest.raises(ShipmlError, match="no Docker engine answers") as caught:
        docker_client()
    assert "\n" not in str(caught.value)


def test_cli_status_and_base_image_fail_with_one_line_without_engine(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'none.sock'}")
    runner = CliRunner()
    for args in (["status"], ["base-image", "--tag", "shipml-never-built:1"]):
        result = runner.invoke(app, args)
        assert result.exit_code != 0
        assert isinstance(result.exception, ShipmlError), result.output
        assert "no Docker engine answers" in str(result.exception)


def test_missing_debootstrap_is_named_with_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty PATH: no debootstrap anywhere
    with pytest.raises(ShipmlError, match=r"debootstrap is not installed: .*apt-get install"):
        base_image.build_rootfs(tmp_path / "rootfs.tar")
    assert not (tmp_path / "rootfs.tar").exists()


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="no POSIX user ids on this platform")
def test_building_the_rootfs_as_a_normal_user_says_it_needs_root():
    # As root, drop to 'nobody' in a child process to see what a student would see.
    root = os.geteuid() == 0
    prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if root else []
    code = (
        "import shutil, sys\n"
        "from pathlib import Path\n"
        "from shipml.containers import base_image\n"
        "from shipml.errors import ShipmlError\n"
        "if shutil.which('debootstrap') is None:\n"
        "    print('NO-DEBOOTSTRAP'); sys.exit(0)\n"
        "try:\n"
        "    base_image.build_rootfs(Path('/nonexistent/shipml/rootfs.tar'))\n"
        "except ShipmlError as exc:\n"
        "    print(exc)\n"
    )
    env = {**os.environ, "HOME": "/nonexistent"}
    result = subprocess.run([*prefix, sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    if "NO-DEBOOTSTRAP" in result.stdout:
        pytest.skip("debootstrap is not installed, so the root check is never reached")
    assert "needs root" in result.stdout
    assert "sudo" in result.stdout


def test_a_missing_ca_bundle_is_refused_before_any_work(tmp_path):
    with pytest.raises(ShipmlError, match="CA bundle .* does not exist"):
        base_image.build_base_image("shipml-never-built:1", ca_bundle=tmp_path / "nope.pem")


def test_import_changes_mirror_the_official_image_and_name_the_ca_bundle():
    changes = base_image.image_changes("3.11.2", "bookworm", base_image.DEFAULT_MIRROR, "ab" * 32)
    assert 'CMD ["python3"]' in changes
    assert "ENV LANG=C.UTF-8" in changes
    assert any(c.startswith("ENV PATH=/usr/local/sbin:/usr/local/bin:") for c in changes)
    for variable in ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        assert f"ENV {variable}={base_image.CA_PATH_IN_IMAGE}" in changes
    without = base_image.image_changes("3.11.2", "bookworm", base_image.DEFAULT_MIRROR, None)
    assert not any("PIP_CERT" in c for c in without)


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("python:3.11-slim", ("python", "3.11-slim")),
        ("shipml/serving", ("shipml/serving", "latest")),
        ("localhost:5000/shipml/serving", ("localhost:5000/shipml/serving", "latest")),
        ("localhost:5000/shipml/serving:0.1", ("localhost:5000/shipml/serving", "0.1")),
    ],
)
def test_split_tag_keeps_registry_ports_out_of_the_tag(tag, expected):
    assert base_image.split_tag(tag) == expected


def test_cli_defaults_match_the_base_image_module():
    from shipml.cli import docker as cli

    assert (cli.DEFAULT_TAG, cli.DEFAULT_SUITE, cli.DEFAULT_MIRROR) == (
        base_image.DEFAULT_TAG,
        base_image.DEFAULT_SUITE,
        base_image.DEFAULT_MIRROR,
    )


def test_the_cli_module_imports_without_the_docker_sdk():
    """Serving images have no Docker SDK; `shipml serve` there must still start."""
    code = (
        "import sys; sys.modules['docker'] = None\n"  # makes `import docker` fail
        "import shipml.cli.docker as m; print(m.app.info.help.split(':')[0])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Docker"


@pytest.mark.docker
def test_remove_tags_removes_only_the_tags_with_the_prefix(client, base_image):
    import uuid

    from shipml.containers import remove_tags

    prefix = f"rmtest-{uuid.uuid4().hex[:8]}-"
    repository = "shipml-test-remove-tags"
    image = client.images.get(base_image)
    for tag in (f"{prefix}a", f"{prefix}b", "keep-" + prefix):
        image.tag(repository, tag)
    try:
        removed = remove_tags(repository, prefix)
        assert sorted(removed) == [f"{repository}:{prefix}a", f"{repository}:{prefix}b"]
        left = [t for i in client.images.list(name=repository) for t in i.tags if t.startswith(repository + ":")]
        assert left == [f"{repository}:keep-{prefix}"]
        client.images.get(base_image)  # the layers stay
    finally:
        for i in client.images.list(name=repository):
            for t in i.tags:
                if t.startswith(repository + ":"):
                    client.images.remove(t)
