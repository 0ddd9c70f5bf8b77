"""A local ``python:3.11-slim``-compatible base image, built from Debian packages.

Why: classrooms without registry access (and CI machines here) cannot ``docker pull`` anything, and
networks with a TLS-intercepting proxy break ``pip install`` inside builds unless the image trusts
the proxy's CA. ``debootstrap`` fetches plain Debian packages over the normal package mirror; the
resulting root filesystem is imported with ``docker import`` and behaves like the official image:
``python``/``pip`` on PATH, ``LANG=C.UTF-8``, ``CMD ["python3"]`` and a plain ``pip install``
works as root (Debian's PEP 668 "externally managed" marker is removed: the official image has
none).

The root filesystem is cached as a tarball, so rebuilding the image (``--force``, a new CA bundle)
takes seconds instead of a fresh debootstrap.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import platform
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from docker.errors import APIError, ImageNotFound

from shipml.containers.engine import LABEL, docker_client
from shipml.errors import ShipmlError

DEFAULT_TAG = "python:3.11-slim"
DEFAULT_SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
# Labels on the image record how it was made (and which CA bundle it trusts).
IMAGE_LABEL = "io.shipml.base-image"
PACKAGES = ("python3", "python3-pip", "python3-venv", "ca-certificates")
# Bump when the customisation of the root filesystem changes: old cached tarballs are then ignored.
RECIPE_VERSION = 2
# Where a baked-in CA bundle lives inside the image, and the variables that make tools trust it.
CA_PATH_IN_IMAGE = "/etc/ssl/certs/shipml-ca-bundle.crt"
CA_VARIABLES = ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE")
PATH_IN_IMAGE = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Trimmed from the root filesystem: documentation and package lists nobody needs in a container.
TRIM = (
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "var/lib/apt/lists",
    "var/cache/apt",
    "var/cache/debconf/templates.dat-old",
    "var/log",
)

Echo = Callable[[str], None]


@dataclass
class BaseImageResult:
    """What ``build_base_image`` did, with the figures the course reports."""

    tag: str
    image_id: str
    built: bool
    seconds: float
    rootfs_from_cache: bool = False
    python_version: str | None = None
    size_bytes: int | None = None
    ca_bundle: str | None = None
    notes: list[str] = field(default_factory=list)


def default_cache_dir() -> Path:
    """``$SHIPML_CACHE_DIR`` or ``$XDG_CACHE_HOME/shipml`` (``~/.cache/shipml``)."""
    root = os.environ.get("SHIPML_CACHE_DIR")
    if root:
        return Path(root)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "shipml"


def _debian_arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "armhf"}.get(machine, machine)


def rootfs_tarball(cache_dir: Path, suite: str, mirror: str) -> Path:
    """The cached root filesystem for this suite, mirror, package list and recipe."""
    key = json.dumps([suite, mirror.rstrip("/"), _debian_arch(), PACKAGES, RECIPE_VERSION])
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return cache_dir / "base-image" / f"{suite}-{_debian_arch()}-{digest}.tar"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _check_can_debootstrap() -> str:
    debootstrap = shutil.which("debootstrap")
    if debootstrap is None:
        raise ShipmlError(
            "debootstrap is not installed: `sudo apt-get install debootstrap` (Debian/Ubuntu), then run this again"
        )
    if os.geteuid() != 0:
        raise ShipmlError(
            "building the base image's root filesystem needs root (debootstrap, chroot): run it with sudo"
        )
    return debootstrap


def _mounts_under(directory: Path) -> list[str]:
    prefix = str(directory.resolve()) + "/"
    with open("/proc/mounts") as mounts:
        points = [line.split()[1] for line in mounts]
    return sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True)


def _remove_rootfs(directory: Path) -> None:
    """Remove a (partial) root filesystem; unmount /proc etc. first so rmtree stays inside it."""
    for point in _mounts_under(directory):
        subprocess.run(["umount", "-l", point], check=False)
    if _mounts_under(directory):
        raise ShipmlError(f"cannot unmount everything under {directory}; remove it by hand")
    shutil.rmtree(directory, ignore_errors=True)


class _DebootstrapProgress:
    """Debootstrap prints one line per package and step: show one tqdm counter per phase."""

    PHASES = ("Retrieving", "Validating", "Extracting", "Unpacking", "Configuring", "Installing")

    def __init__(self, echo: Echo, bars: bool) -> None:
        self.echo = echo
        self.bars = bars
        self.phase: str | None = None
        self.bar = None

    def line(self, text: str) -> None:
        text = text.rstrip()
        words = text.split()
        verb = words[1] if len(words) > 2 and words[0] == "I:" else None
        if verb in self.PHASES:
            if verb != self.phase:  # a new phase: say so once, then count its steps
                self.close()
                self.phase = verb
                self.echo(f"debootstrap: {text[3:].strip()}")
                if self.bars:
                    from tqdm.auto import tqdm

                    self.bar = tqdm(desc=f"debootstrap: {verb.lower()}", unit="step", leave=False)
            if self.bar is not None:
                self.bar.update(1)
            return
        self.close()
        if text.startswith(("I:", "E:", "W:")):
            self.echo(f"debootstrap: {text[3:].strip()}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        self.phase = None


def _run_debootstrap(
    target: Path, suite: str, mirror: str, deb_cache: Path, log_path: Path, echo: Echo, bars: bool
) -> None:
    debootstrap = _check_can_debootstrap()
    deb_cache.mkdir(parents=True, exist_ok=True)
    command = [
        debootstrap,
        "--variant=minbase",
        f"--include={','.join(PACKAGES)}",
        f"--cache-dir={deb_cache}",
        suite,
        str(target),
        mirror,
    ]
    echo(f"$ {' '.join(command)}")
    progress = _DebootstrapProgress(echo, bars)
    with (
        open(log_path, "w") as log,
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1) as process,
    ):
        assert process.stdout is not None
        last_error = ""
        for line in process.stdout:
            log.write(line)
            if line.startswith("E:"):
                last_error = line[2:].strip()
            progress.line(line)
        code = process.wait()
    progress.close()
    if code != 0:
        raise ShipmlError(f"debootstrap failed (exit {code}): {last_error or 'see the log'}; full log: {log_path}")


def _customise_rootfs(root: Path) -> str:
    """Make the Debian tree behave like the official image; return its Python version."""
    for marker in root.glob("usr/lib/python3*/EXTERNALLY-MANAGED"):
        marker.unlink()  # the official image lets root `pip install` system-wide
    local_bin = root / "usr/local/bin"
    local_bin.mkdir(parents=True, exist_ok=True)
    for name, target in {
        "python": "/usr/bin/python3",
        "pip": "/usr/bin/pip3",
        "pip3": "/usr/bin/pip3",
    }.items():
        link = local_bin / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target)
    for relative in TRIM:
        path = root / relative
        if path.is_dir():
            for child in path.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
        elif path.exists():
            path.unlink()
    # Like the official image: no byte-code caches or test suites under the Python trees (~26 MB).
    for tree in root.glob("usr/lib/python3*"):
        for directory in sorted(tree.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if (
                directory.is_dir()
                and not directory.is_symlink()
                and directory.name in ("__pycache__", "test", "tests", "idle_test")
            ):
                shutil.rmtree(directory)
    for name in ("etc/resolv.conf", "etc/hostname"):  # the engine provides both at run time
        (root / name).unlink(missing_ok=True)
    (root / "var/lib/apt/lists/partial").mkdir(parents=True, exist_ok=True)
    (root / "var/cache/apt/archives/partial").mkdir(parents=True, exist_ok=True)
    (root / "var/log/apt").mkdir(parents=True, exist_ok=True)
    version = subprocess.run(
        [
            "chroot",
            str(root),
            "/usr/bin/python3",
            "-c",
            "import platform; print(platform.python_version())",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if version.returncode != 0:
        raise ShipmlError(f"the new root filesystem has no working python3: {version.stderr.strip()}")
    return version.stdout.strip()


def build_rootfs(
    tarball: Path,
    suite: str = DEFAULT_SUITE,
    mirror: str = DEFAULT_MIRROR,
    echo: Echo = print,
    bars: bool = True,
) -> dict:
    """Debootstrap, customise and tar a root filesystem into ``tarball`` (plus a .json record)."""
    _check_can_debootstrap()
    tarball.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="rootfs-", dir=tarball.parent))
    try:
        _run_debootstrap(
            work,
            suite,
            mirror,
            tarball.parent / "debs",
            tarball.parent / "debootstrap.log",
            echo,
            bars,
        )
        python_version = _customise_rootfs(work)
        echo(f"packing the root filesystem (Python {python_version}) into {tarball}")
        partial = tarball.with_suffix(".tar.partial")
        subprocess.run(
            ["tar", "--numeric-owner", "--xattrs", "-C", str(work), "-cf", str(partial), "."],
            check=True,
        )
        record = {
            "suite": suite,
            "mirror": mirror,
            "arch": _debian_arch(),
            "packages": list(PACKAGES),
            "recipe": RECIPE_VERSION,
            "python_version": python_version,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        tarball.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
        partial.replace(tarball)
        return record
    finally:
        _remove_rootfs(work)


def _with_ca_bundle(tarball: Path, ca_bundle: Path, scratch: Path) -> Path:
    """A copy of the root filesystem tarball with the CA bundle appended at ``CA_PATH_IN_IMAGE``."""
    copy = scratch / "rootfs-with-ca.tar"
    shutil.copyfile(tarball, copy)
    data = ca_bundle.read_bytes()
    with tarfile.open(copy, "a", format=tarfile.GNU_FORMAT) as archive:
        info = tarfile.TarInfo("." + CA_PATH_IN_IMAGE)
        info.size = len(data)
        info.mode = 0o644
        info.mtime = int(time.time())
        archive.addfile(info, io.BytesIO(data))
    return copy


def image_changes(python_version: str, suite: str, mirror: str, ca_sha256: str | None) -> list[str]:
    """The Dockerfile instructions ``docker import`` applies: the official image's environment."""
    changes = [
        f"ENV PATH={PATH_IN_IMAGE}",
        "ENV LANG=C.UTF-8",
        f"ENV PYTHON_VERSION={python_version}",
        'CMD ["python3"]',
        f"LABEL {IMAGE_LABEL}=1 {IMAGE_LABEL}.suite={suite} {IMAGE_LABEL}.mirror={mirror} "
        f"{IMAGE_LABEL}.ca-sha256={ca_sha256 or 'none'}",
    ]
    if ca_sha256:
        changes += [f"ENV {name}={CA_PATH_IN_IMAGE}" for name in CA_VARIABLES]
    return changes


def split_tag(tag: str) -> tuple[str, str]:
    """``"python:3.11-slim"`` -> ``("python", "3.11-slim")``; a registry port is not a tag."""
    repository, _, version = tag.rpartition(":")
    if not repository or "/" in version:
        return tag, "latest"
    return repository, version


def _existing_image(client, tag: str):
    try:
        return client.images.get(tag)
    except ImageNotFound:
        return None


def _smoke_test(client, tag: str) -> str:
    """Run python and pip in the new image once: a broken image fails here, not in a build."""
    script = "import sys, pip; print(sys.version.split()[0], pip.__version__)"
    try:
        output = client.containers.run(
            tag, ["python", "-c", script], remove=True, labels={LABEL: "base-image-smoke-test"}
        )
    except APIError as exc:
        raise ShipmlError(f"the new image {tag} does not run python: {exc.explanation}") from None
    return output.decode().strip()


def _kept(existing, tag: str, ca_sha256: str | None, started: float, echo: Echo) -> BaseImageResult:
    """``tag`` exists and is kept (no ``--force``): say so, and note when it was built with another CA bundle
    than the one asked for (building is minutes; the user decides)."""
    labels = existing.labels or {}
    result = BaseImageResult(tag, existing.id, False, time.perf_counter() - started,
                             size_bytes=existing.attrs.get("Size"))
    baked = labels.get(f"{IMAGE_LABEL}.ca-sha256", "none")
    baked = None if baked == "none" else baked
    if ca_sha256 and baked != ca_sha256:
        result.notes.append(f"{tag} exists but was built {'with another' if baked else 'without a'} CA bundle; "
                            "add --force to rebuild it with this one")
    echo(f"{tag} exists ({existing.short_id}); nothing to do (--force rebuilds it)")
    for note in result.notes:
        echo(note)
    return result


def _cached_rootfs(cache: Path, suite: str, mirror: str, refresh: bool, echo: Echo,
                   bars: bool) -> tuple[Path, dict, bool]:
    """The root filesystem tarball, its record (python version...) and whether it came from the cache:
    debootstrapped only when the cache lacks it or ``refresh`` asks."""
    tarball = rootfs_tarball(cache, suite, mirror)
    from_cache = tarball.is_file() and tarball.with_suffix(".json").is_file() and not refresh
    if from_cache:
        echo(f"using the cached root filesystem {tarball}")
        return tarball, json.loads(tarball.with_suffix(".json").read_text()), True
    echo(f"debootstrapping Debian {suite} from {mirror} (a few minutes the first time)")
    return tarball, build_rootfs(tarball, suite, mirror, echo=echo, bars=bars), False


def build_base_image(
    tag: str = DEFAULT_TAG,
    *,
    ca_bundle: str | Path | None = None,
    suite: str = DEFAULT_SUITE,
    mirror: str = DEFAULT_MIRROR,
    force: bool = False,
    refresh_rootfs: bool = False,
    cache_dir: str | Path | None = None,
    echo: Echo = print,
    bars: bool = True,
) -> BaseImageResult:
    """Build ``tag`` from Debian packages unless it exists (``force`` rebuilds it).

    ``ca_bundle`` is baked in and named by PIP_CERT, REQUESTS_CA_BUNDLE, SSL_CERT_FILE and
    CURL_CA_BUNDLE, so ``pip install`` works behind a TLS-intercepting proxy. The debootstrapped
    root filesystem is cached under ``cache_dir``; ``refresh_rootfs`` debootstraps again.
    """
    started = time.perf_counter()
    ca_path = Path(ca_bundle).expanduser() if ca_bundle else None
    if ca_path is not None and not ca_path.is_file():
        raise ShipmlError(f"CA bundle {ca_path} does not exist (Debian: /etc/ssl/certs/ca-certificates.crt)")
    ca_sha256 = _sha256(ca_path) if ca_path else None
    client = docker_client()
    try:
        existing = _existing_image(client, tag)
        if existing is not None and not force:
            return _kept(existing, tag, ca_sha256, started, echo)

        cache = Path(cache_dir) if cache_dir else default_cache_dir()
        tarball, record, from_cache = _cached_rootfs(cache, suite, mirror, refresh_rootfs, echo, bars)
        python_version = record["python_version"]

        changes = image_changes(python_version, suite, mirror, ca_sha256)
        with tempfile.TemporaryDirectory(prefix="shipml-base-") as scratch:
            source = _with_ca_bundle(tarball, ca_path, Path(scratch)) if ca_path else tarball
            echo(f"importing {source.stat().st_size / 1e6:.0f} MB into the engine as {tag}")
            repository, version = split_tag(tag)
            client.api.import_image_from_file(str(source), repository=repository, tag=version, changes=changes)
        image = client.images.get(tag)
        if existing is not None and existing.id != image.id:
            # The image --force replaced is now untagged: do not leave it behind (unless in use).
            with contextlib.suppress(APIError):
                client.images.remove(existing.id)
        smoke = _smoke_test(client, tag)
        echo(f"built {tag} ({image.short_id}, {image.attrs['Size'] / 1e6:.0f} MB): python {smoke}")
        return BaseImageResult(
            tag,
            image.id,
            True,
            time.perf_counter() - started,
            from_cache,
            python_version,
            image.attrs.get("Size"),
            str(ca_path) if ca_path else None,
        )
    finally:
        client.close()
