"""The local base image behaves like python:3.11-slim, and pip works inside builds (CA bundle)."""

from __future__ import annotations

import os
import shutil
import time

import pytest
from docker.errors import ImageNotFound
from shipml.cli.docker import app
from shipml.containers import base_image as base
from shipml.containers import image_layers, remove_image, run_container, temporary_image
from typer.testing import CliRunner

pytestmark = pytest.mark.docker


def _run_python(image: str, code: str, session_labels) -> str:
    with run_container(image, ["python", "-c", code], labels=session_labels) as running:
        running.container.wait(timeout=60)
        return running.logs("all").strip()


def test_base_image_runs_python_311_with_the_official_images_defaults(client, base_image, session_labels):
    config = client.images.get(base_image).attrs["Config"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert config["Cmd"] == ["python3"]
    assert env["LANG"] == "C.UTF-8"
    assert env["PATH"].split(":")[:2] == ["/usr/local/sbin", "/usr/local/bin"]
    out = _run_python(
        base_image,
        "import sys, shutil, pip; print(sys.version_info[:2] == (3, 11), shutil.which('python'),"
        " shutil.which('pip'), sys.getfilesystemencoding())",
        session_labels,
    )
    assert out.split() == ["True", "/usr/local/bin/python", "/usr/local/bin/pip", "utf-8"]


def test_plain_pip_install_as_root_works_like_in_the_official_image(base_image, session_labels):
    """Debian marks its Python "externally managed" (PEP 668); the official image does not."""
    script = (
        "set -e; mkdir /tmp/hello && cd /tmp/hello;"
        ' printf \'from setuptools import setup; setup(name="hello-shipml", version="1.0")\''
        " > setup.py;"
        " pip install --no-index --no-build-isolation --disable-pip-version-check -q . 2>&1;"
        ' python -c \'import importlib.metadata as m; print("installed", m.version("hello-shipml"))\';'
        " python -m venv /tmp/venv && /tmp/venv/bin/python -c 'print(\"venv-ok\")'"
    )
    with run_container(base_image, ["sh", "-c", script], labels=session_labels) as running:
        exit_code = running.container.wait(timeout=120)["StatusCode"]
        log = running.logs("all")
    assert "externally-managed-environment" not in log
    assert exit_code == 0, log
    assert "installed 1.0" in log
    assert "venv-ok" in log


def test_pip_install_from_pypi_inside_a_build_trusts_the_network(client, base_image, tmp_path, unique_tag):
    """The proxy/CA feature: a real `pip install` from PyPI during `docker build`.

    Behind a TLS-intercepting proxy this only passes when the base image trusts the proxy's CA
    (``shipml docker base-image --ca-bundle``); without a proxy it passes anyway.
    """
    (tmp_path / "Dockerfile").write_text(
        f"FROM {base_image}\n"
        "RUN pip install --no-cache-dir --disable-pip-version-check six==1.17.0\n"
        "RUN python -c \"import six; assert six.__version__ == '1.17.0'\"\n"
    )
    with temporary_image(tmp_path, unique_tag, nocache=True, progress="none") as built:
        assert built.steps >= 3  # the builder adds a LABEL step
        assert built.cached_steps == 0
        layers = image_layers(unique_tag)
        pip_layer = next(layer for layer in layers if "pip install" in layer.instruction)
        assert pip_layer.size_bytes > 10_000  # six was really installed into the image
    with pytest.raises(ImageNotFound):  # temporary_image removed it
        client.images.get(unique_tag)


def test_the_cli_skips_an_existing_image_quickly(base_image):
    started = time.perf_counter()
    result = CliRunner().invoke(app, ["base-image", "--tag", base_image])
    assert result.exit_code == 0, result.output
    assert "exists" in result.output and "--force" in result.output
    assert time.perf_counter() - started < 10


@pytest.mark.slow
def test_a_ca_bundle_is_baked_in_and_named_by_pip_and_requests(
    client, tmp_path, rootfs_cache, unique_tag, session_labels
):
    cache = rootfs_cache
    fresh = not base.rootfs_tarball(cache, base.DEFAULT_SUITE, base.DEFAULT_MIRROR).is_file()
    if fresh and (os.geteuid() != 0 or shutil.which("debootstrap") is None):
        pytest.skip("no cached root filesystem, and no root + debootstrap to make one")
    bundle = tmp_path / "classroom-proxy-ca.pem"
    bundle.write_text("# a classroom proxy's CA would be here\n")
    try:
        result = base.build_base_image(unique_tag, ca_bundle=bundle, cache_dir=cache, echo=lambda _: None, bars=False)
        assert result.built
        labels = client.images.get(unique_tag).labels
        assert labels[f"{base.IMAGE_LABEL}.ca-sha256"] == base._sha256(bundle)
        out = _run_python(
            unique_tag,
            "import os, hashlib; p = os.environ['PIP_CERT'];"
            "print(p == os.environ['REQUESTS_CA_BUNDLE'] == os.environ['SSL_CERT_FILE'],"
            " hashlib.sha256(open(p, 'rb').read()).hexdigest())",
            session_labels,
        )
        assert out.split() == ["True", base._sha256(bundle)]
        # Asking again is a no-op, and says so when the CA bundle differs.
        other = tmp_path / "other.pem"
        other.write_text("# another CA\n")
        again = base.build_base_image(unique_tag, ca_bundle=other, cache_dir=cache, echo=lambda _: None)
        assert not again.built
        assert any("another CA bundle" in note for note in again.notes)
    finally:
        remove_image(unique_tag)
