"""Which sandbox runs a submission, and the command line that builds it.

``auto`` (the default) takes ``docker`` when an engine answers and the grader image exists, else
``bwrap`` (Debian's bubblewrap) when it runs here, else refuses: ``none`` must be asked for.

What a submission sees, in ``docker`` and ``bwrap`` alike:

- read-only: the Python runtime (the venv and its base interpreter), a copy of the ``shipml`` package
  *without* ``shipml/grading/`` mounted where the package is installed (:mod:`shipml.grading.kit`), the
  rebuilt notebook, the worker script, ``/usr`` and a few files of ``/etc``;
- read-write: only its job folder ``/job``, a size-capped tmpfs (``/dev/shm`` and ``/tmp`` likewise);
- no network (its own network namespace: loopback only), its own PID namespace (every process it
  started dies with the worker), an unprivileged uid of its own per parallel slot, no capabilities,
  ``no_new_privs``. Not the checkout, ``solutions/``, the hidden checks, other submissions, results or
  the gradebook: none of them is mounted.

``none`` runs the worker as a plain child process of the grader, as the grader's user: trusted runs only.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from shipml.errors import ShipmlError
from shipml.paths import PACKAGE_DIR

SANDBOXES = ("auto", "docker", "bwrap", "none")
DOCKER_IMAGE = os.environ.get("SHIPML_GRADER_IMAGE", "python:3.11-slim")
JOB = "/job"  # the job folder inside a sandbox (the notebook's working directory, home, temp files)
OUT = "/out"  # the answers file, the executed notebook, the kernel's connection file: a tmpfs of its own,
# so a notebook that fills its job folder still has its answers recorded
GRADER = "/grader"  # the worker script and its limits inside a sandbox
INPUT = "/input"  # the job file and the rebuilt notebook inside a sandbox
UID_BASE = 61000  # slot n of a grading run runs as uid/gid slot_uids()[n]
UID_SPAN = 64 * 1000  # every uid a grading run may use lies in [UID_BASE, UID_BASE + UID_SPAN)
MiB = 1024 * 1024
UNSAFE = ("--sandbox none is unsafe: submissions run as your user with access to everything you can read and "
          "write (solutions, other submissions, the gradebook, the network). Use it only for submissions you trust.")


@dataclass(frozen=True)
class Box:
    """One sandboxed run: which sandbox, the staged kit, the slot's uid and the size caps."""

    kind: str  # docker, bwrap or none
    kit: Path | None = None  # staged copy of the package minus grading/ (kit.stage)
    grader: Path | None = None  # staged worker.py + limits.py
    etc: Path | None = None  # staged passwd, group, hosts (etc_files)
    uid: int = UID_BASE
    job_mib: int = 256  # size of /job
    tmp_mib: int = 64  # size of /tmp and of /dev/shm
    out_mib: int = 64  # size of /out (answers, executed notebook)


def _bwrap_probe() -> str | None:
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return "bubblewrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    done = subprocess.run([bwrap, *_namespace_flags(), "--ro-bind", "/", "/", "--proc", "/proc", "true"],
                          capture_output=True, text=True, timeout=30)
    if done.returncode:
        return f"bwrap cannot create namespaces here: {done.stderr.strip().splitlines()[-1:] or done.returncode}"
    return None


@functools.lru_cache(maxsize=1)
def bwrap_unavailable() -> str | None:
    """Why bubblewrap cannot sandbox here (None when it can)."""
    try:
        return _bwrap_probe()
    except (OSError, subprocess.SubprocessError) as exc:
        return f"bwrap failed to start: {exc}"


def docker_unavailable() -> str | None:
    """Why the docker sandbox cannot run here (None when it can)."""
    from shipml.containers.engine import engine_available

    status = engine_available()
    if not status:
        return f"no Docker engine answers ({status.reason})"
    done = subprocess.run(["docker", "image", "inspect", DOCKER_IMAGE], capture_output=True, timeout=60)
    if done.returncode:
        return f"the grader image {DOCKER_IMAGE} is missing (build it: shipml docker base-image)"
    return None


def choose(requested: str) -> str:
    """The sandbox ``requested`` resolves to here; a clear error when it cannot run."""
    if requested not in SANDBOXES:
        raise ShipmlError(f"--sandbox must be one of {', '.join(SANDBOXES)}, not '{requested}'")
    if requested == "none":
        return "none"
    if requested in ("auto", "docker"):
        why_not_docker = docker_unavailable()
        if why_not_docker is None:
            return "docker"
        if requested == "docker":
            raise ShipmlError(f"--sandbox docker: {why_not_docker}")
    why_not_bwrap = bwrap_unavailable()
    if why_not_bwrap is None:
        return "bwrap"
    if requested == "bwrap":
        raise ShipmlError(f"--sandbox bwrap: {why_not_bwrap}")
    raise ShipmlError(f"no sandbox works here: docker: {docker_unavailable()}; bwrap: {why_not_bwrap}. Install "
                      "bubblewrap (apt-get install bubblewrap), or pass --sandbox none for trusted submissions")


def describe() -> str:
    """One line for ``shipml doctor``: which sandbox ``shipml grade`` uses on this machine, and why."""
    docker, bwrap = docker_unavailable(), bwrap_unavailable()
    if docker is None:
        return f"docker (image {DOCKER_IMAGE}, --network none, read-only, non-root)"
    if bwrap is None:
        return f"bwrap (user/pid/net namespaces, tmpfs job folder, non-root; docker: {docker})"
    return f"none available (docker: {docker}; bwrap: {bwrap})"


# ---- command lines ----------------------------------------------------------------------------

def runtime_mounts() -> list[Path]:
    """What the kernel needs to start: the venv (kernelspec ``shipml`` inside) and its base interpreter."""
    paths = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()}
    return sorted(p for p in paths if not str(p).startswith("/usr"))


def env(box: Box, job_dir: str) -> dict[str, str]:
    """The whole environment of a sandboxed worker: nothing of the grader's (tokens, paths) leaks in."""
    bin_dir = str(Path(sys.prefix) / "bin")
    out = {"PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin", "HOME": f"{job_dir}/home", "LANG": "C.UTF-8",
           "TMPDIR": "/tmp", "USER": "student", "VIRTUAL_ENV": sys.prefix}
    out["JUPYTER_PATH"] = f"{GRADER}/jupyter"  # the grader's kernelspec first (kit.kernelspec)
    if box.kind == "none":
        out = {k: v for k, v in os.environ.items() if not k.startswith(("SHIPML_ANSWERS", "JPY_", "PYTEST"))}
        out["TMPDIR"] = f"{job_dir}/tmp"
        if box.grader:
            out["JUPYTER_PATH"] = str(box.grader / "jupyter")
    for var, sub in [("JUPYTER_RUNTIME_DIR", "runtime"), ("IPYTHONDIR", "ipython"),
                     ("MPLCONFIGDIR", "matplotlib"), ("JUPYTER_CONFIG_DIR", "jupyter-config")]:
        out[var] = f"{job_dir}/{sub}"  # per submission: no startup file survives into the next one
    if box.kind != "none":
        out["JUPYTER_RUNTIME_DIR"] = f"{OUT}/runtime"
    out.update(MPLBACKEND="Agg", PYTHONDONTWRITEBYTECODE="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               PYTHONHASHSEED="0", PYTHONNOUSERSITE="1")
    return out


def _namespace_flags() -> list[str]:
    flags = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
             "--die-with-parent", "--new-session"]
    if os.geteuid() != 0:
        flags += ["--unshare-user", "--uid", "65534", "--gid", "65534"]  # outside: the instructor's own uid
    return flags


def _ancestors(paths: list[Path]) -> list[str]:
    """Every folder above the mount points, created world-searchable (bwrap makes them 0700 otherwise)."""
    out: list[str] = []
    for p in paths:
        for parent in reversed(p.parents):
            if str(parent) != "/" and str(parent) not in out and not str(parent).startswith("/usr"):
                out.append(str(parent))
    return out


def slot_uids(jobs: int) -> list[int]:
    """The uids of one grading run's slots: its own block of 64, so two runs at once never share a uid
    (RLIMIT_NPROC counts per uid)."""
    base = UID_BASE + 64 * (os.getpid() % (UID_SPAN // 64))
    return [base + n for n in range(min(max(1, jobs), 64))]


def etc_files(folder: Path, uids: list[int] | None = None) -> Path:
    """A tiny /etc for the sandbox: passwd/group naming the slot uids, hosts with localhost."""
    etc = folder / "etc"
    etc.mkdir(parents=True, exist_ok=True)
    uids = uids or slot_uids(64)
    (etc / "passwd").write_text("".join(f"student{n}:x:{u}:{u}::{JOB}/home:/bin/false\n" for n, u in enumerate(uids))
                                + "nobody:x:65534:65534::/nonexistent:/bin/false\n")
    (etc / "group").write_text("".join(f"student{n}:x:{u}:\n" for n, u in enumerate(uids)) + "nogroup:x:65534:\n")
    (etc / "hosts").write_text("127.0.0.1 localhost\n::1 localhost\n")
    for f in etc.iterdir():
        f.chmod(0o644)
    return etc


def bwrap_command(box: Box, staged: Path, argv: list[str]) -> list[str]:
    """``bwrap`` around ``argv``; ``staged`` holds job.json and in.ipynb (mounted read-only at /input)."""
    kit_target = PACKAGE_DIR  # where the package is installed: the editable .pth points above it
    mounts = [*runtime_mounts(), kit_target]
    cmd = ["bwrap", *_namespace_flags(),
           "--ro-bind", "/usr", "/usr", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
           "--symlink", "usr/bin", "/bin", "--symlink", "usr/sbin", "/sbin",
           "--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    etc = box.etc
    for name in ("passwd", "group", "hosts"):
        cmd += ["--ro-bind", str(etc / name), f"/etc/{name}"]
    cmd += ["--proc", "/proc", "--dev", "/dev",
            "--size", str(box.tmp_mib * MiB), "--perms", "1777", "--tmpfs", "/dev/shm",
            "--size", str(box.tmp_mib * MiB), "--perms", "1777", "--tmpfs", "/tmp",
            "--size", str(box.job_mib * MiB), "--perms", "1777", "--tmpfs", JOB,
            "--size", str(box.out_mib * MiB), "--perms", "1777", "--tmpfs", OUT]
    for folder in _ancestors(mounts):
        cmd += ["--perms", "0755", "--dir", folder]
    for path in runtime_mounts():
        cmd += ["--ro-bind", str(path), str(path)]
    cmd += ["--ro-bind", str(box.kit), str(kit_target), "--ro-bind", str(box.grader), GRADER,
            "--ro-bind", str(staged), INPUT,
            "--chdir", JOB, "--clearenv"]
    for var, value in env(box, JOB).items():
        cmd += ["--setenv", var, value]
    if os.geteuid() == 0:  # root: drop to the slot's own uid inside (bwrap alone would map it to root outside)
        cmd += ["--cap-add", "CAP_SETUID,CAP_SETGID", "--", "setpriv", "--reuid", str(box.uid), "--regid",
                str(box.uid), "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", *argv]
    else:
        cmd += ["--", *argv]
    return cmd


def _skeletons(folder: Path, mounts: list[Path]) -> dict[str, Path]:
    """Empty 0755 folder trees standing in for home folders (0700 in images) above the runtime mounts."""
    out: dict[str, Path] = {}
    for path in mounts:
        top = Path("/", *path.parts[1:2])
        if str(top) in ("/root", "/home"):
            target = folder / path.relative_to("/")
            target.mkdir(parents=True, exist_ok=True)
            out[str(top)] = folder / top.relative_to("/")
    for p in [folder, *folder.rglob("*")]:
        p.chmod(0o755)
    return out


def docker_command(box: Box, staged: Path, argv: list[str], name: str, memory_mib: int, pids: int) -> list[str]:
    """``docker run`` around ``argv``: the same mounts as bwrap, nothing of the checkout."""
    cmd = ["docker", "run", "--rm", "-i", "--name", name, "--network", "none", "--read-only",
           "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--user", f"{box.uid}:{box.uid}",
           f"--memory={memory_mib}m", f"--memory-swap={memory_mib}m", f"--pids-limit={pids}",
           "--label", "io.shipml.owner=grader", "--ipc", "private", f"--shm-size={box.tmp_mib}m",
           "--tmpfs", f"{JOB}:rw,size={box.job_mib}m,mode=1777",
           "--tmpfs", f"/tmp:rw,size={box.tmp_mib}m,mode=1777",
           "--tmpfs", f"{OUT}:rw,size={box.out_mib}m,mode=1777"]  # no -w: it would make /job 0755
    for top, skeleton in _skeletons(box.etc.parent / "skeleton", runtime_mounts()).items():
        cmd += ["-v", f"{skeleton}:{top}:ro"]  # /root is 0700 in the image: an empty world-searchable copy
    for path in runtime_mounts():
        cmd += ["-v", f"{path}:{path}:ro"]
    etc = box.etc
    cmd += ["-v", f"{box.kit}:{PACKAGE_DIR}:ro", "-v", f"{box.grader}:{GRADER}:ro",
            "-v", f"{staged}:{INPUT}:ro",
            "-v", f"{etc / 'passwd'}:/etc/passwd:ro", "-v", f"{etc / 'group'}:/etc/group:ro"]
    for var, value in env(box, JOB).items():
        cmd += ["-e", f"{var}={value}"]
    return [*cmd, DOCKER_IMAGE, *argv]
