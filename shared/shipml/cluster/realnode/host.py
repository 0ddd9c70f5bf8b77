"""What a real node changes on the host, and how it is put back.

The kubelet sets kernel tunables when it starts (`vm.overcommit_memory` 0 -> 1, `kernel.panic`,
`kernel.panic_on_oops`, the key quotas), kube-proxy sets `route_localnet`, and both leave firewall
chains behind. Other work on the machine depends on the defaults (the grader's memory limits need
overcommit heuristics), so containerd and the kubelet run in a private mount namespace where the
kubelet's wanted values are bound over those /proc/sys files (it finds them set and writes nothing;
every pod mount stays in that namespace too). The node still snapshots the tunables before it
starts and restores any that changed once it is Ready and at teardown, and removes every
KUBE-*/CNI-* chain, the CNI bridge, the node's address on lo, leftover mounts and the kubelet's
cgroups.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

SYSCTLS = (
    "vm.overcommit_memory", "vm.panic_on_oom", "kernel.panic", "kernel.panic_on_oops",
    "kernel.keys.root_maxkeys", "kernel.keys.root_maxbytes", "net.ipv4.conf.all.route_localnet",
    "net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables", "net.netfilter.nf_conntrack_max",
)
# What the kubelet writes at start unless the value is already there (its setupKernelTunables).
KUBELET_TUNABLES = {
    "vm.overcommit_memory": "1", "vm.panic_on_oom": "0", "kernel.panic": "10",
    "kernel.panic_on_oops": "1", "kernel.keys.root_maxkeys": "1000000",
    "kernel.keys.root_maxbytes": "25000000",
}
# Set by kube-proxy and needed while the node runs: 127.0.0.1:<NodePort> reaches a pod only with
# route_localnet=1 (localhostNodePorts). Restored at teardown, not once the node is Ready.
NEEDED_WHILE_RUNNING = ("net.ipv4.conf.all.route_localnet",)
CHAIN_PREFIXES = ("KUBE-", "CNI-")
TABLES = ("filter", "nat", "mangle", "raw")
CGROUP_ROOT = Path("/sys/fs/cgroup")


def sysctl_path(name: str) -> Path:
    return Path("/proc/sys") / name.replace(".", "/")


def read_sysctls() -> dict[str, str]:
    """The current value of each tunable the node may change (absent ones left out)."""
    values = {}
    for name in SYSCTLS:
        try:
            values[name] = sysctl_path(name).read_text().strip()
        except OSError:
            continue
    return values


def restore_sysctls(saved: dict[str, str]) -> dict[str, tuple[str, str]]:
    """Write back every saved value that changed; return {name: (found, restored)}."""
    changed = {}
    for name, value in saved.items():
        try:
            now = sysctl_path(name).read_text().strip()
            if now != value:
                sysctl_path(name).write_text(value + "\n")
                changed[name] = (now, value)
        except OSError:
            continue
    return changed


CLONE_NEWNS = 0x00020000
MS_BIND, MS_REC, MS_PRIVATE = 0x1000, 0x4000, 0x40000


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def tunable_masks(directory: Path) -> dict[str, Path]:
    """For each tunable the kubelet would change on this host, a file holding the value it wants.

    Bound over /proc/sys/... inside the node's own mount namespace, they make the kubelet find its
    values already set, so it never writes the host's: `vm.overcommit_memory` stays 0 for every
    other process on the machine (the grader's memory limits), with no window at start."""
    masks = {}
    for name, wanted in KUBELET_TUNABLES.items():
        try:
            if sysctl_path(name).read_text().strip() == wanted:
                continue
        except OSError:
            continue
        masks[name] = directory / name
        masks[name].parent.mkdir(parents=True, exist_ok=True)
        masks[name].write_text(wanted + "\n")
    return masks


def new_mount_namespace(masks: dict[str, Path]) -> Callable[[], None]:
    """A `preexec_fn`: the child gets a private mount namespace (its mounts, and those of every
    program it starts, never reach the host's table and vanish with the last of them) with each
    mask bound over its /proc/sys file."""
    items = [(str(path).encode(), str(sysctl_path(name)).encode()) for name, path in masks.items()]

    def enter() -> None:
        libc = _libc()
        _check(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
        _check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate /")
        for source, target in items:
            _check(libc.mount(source, target, None, MS_BIND, None), f"mount --bind over {target.decode()}")

    return enter


def join_mount_namespace(pid: int) -> Callable[[], None]:
    """A `preexec_fn`: the child joins process `pid`'s mount namespace (the kubelet joins
    containerd's, so both see the same pod volumes and the same masked tunables)."""
    path = f"/proc/{pid}/ns/mnt"

    def enter() -> None:
        fd = os.open(path, os.O_RDONLY)
        try:
            _check(_libc().setns(fd, CLONE_NEWNS), f"setns({path})")
        finally:
            os.close(fd)

    return enter


def mount_namespace_works() -> str | None:
    """None if this process may make a private mount namespace and bind a file over /proc/sys
    (root with CAP_SYS_ADMIN, not in a user namespace that forbids it), else why not."""
    probe = Path(f"/run/shipml-mntns-probe-{os.getpid()}")
    probe.write_text("0\n")
    try:
        done = subprocess.run(["true"], preexec_fn=new_mount_namespace({"vm.overcommit_memory": probe}),
                              capture_output=True)
        return None if done.returncode == 0 else "cannot enter a private mount namespace"
    except (OSError, subprocess.SubprocessError) as exc:
        return f"cannot mask kernel tunables in a private mount namespace ({exc})"
    finally:
        probe.unlink(missing_ok=True)


def iptables_tools() -> list[str]:
    return [tool for tool in ("iptables", "ip6tables") if shutil.which(tool)]


def our_chains(tool: str, table: str) -> list[str]:
    """KUBE-*/CNI-* chains in one table (the node's; Docker's chains are named DOCKER*)."""
    done = subprocess.run([f"{tool}-save", "-t", table], capture_output=True, text=True)
    if done.returncode != 0:
        return []
    names = re.findall(r"^:(\S+)", done.stdout, flags=re.M)
    return [name for name in names if name.startswith(CHAIN_PREFIXES)]


def firewall_leftovers() -> dict[str, list[str]]:
    """{"iptables/nat": [chains], ...} of every KUBE-*/CNI-* chain still there."""
    found = {}
    for tool in iptables_tools():
        for table in TABLES:
            chains = our_chains(tool, table)
            if chains:
                found[f"{tool}/{table}"] = chains
    return found


def remove_firewall_chains() -> list[str]:
    """Delete rules that jump to KUBE-*/CNI-* chains, then flush and delete those chains."""
    removed = []
    for tool in iptables_tools():
        for table in TABLES:
            chains = our_chains(tool, table)
            if not chains:
                continue
            rules = subprocess.run([f"{tool}-save", "-t", table], capture_output=True,
                                   text=True).stdout.splitlines()
            for rule in rules:  # rules in built-in (or Docker's) chains that jump to ours
                match = re.match(r"^-A (\S+) (.*)$", rule)
                if match and not match.group(1).startswith(CHAIN_PREFIXES) and \
                        re.search(r"-j (KUBE-|CNI-)", rule):
                    # iptables-save quotes like a shell, with \" inside comments: CNI's
                    # --comment "name: \"shipml\" id: \"...\"" (a plain regex split broke those)
                    args = shlex.split(match.group(2))
                    subprocess.run([tool, "-w", "-t", table, "-D", match.group(1), *args],
                                   capture_output=True)
            for chain in chains:
                subprocess.run([tool, "-w", "-t", table, "-F", chain], capture_output=True)
            for chain in chains:
                if subprocess.run([tool, "-w", "-t", table, "-X", chain],
                                  capture_output=True).returncode == 0:
                    removed.append(f"{tool}/{table}/{chain}")
    return removed


def nft_leftovers() -> list[str]:
    """nftables tables a kube-proxy may leave (it cleans up its nftables mode at start)."""
    if not shutil.which("nft"):
        return []
    done = subprocess.run(["nft", "-j", "list", "tables"], capture_output=True, text=True)
    try:
        items = json.loads(done.stdout or "{}").get("nftables", [])
    except ValueError:
        return []
    return [f"{t['table']['family']} {t['table']['name']}" for t in items
            if "table" in t and t["table"]["name"] in ("kube-proxy",)]


def remove_nft_tables() -> None:
    for spec in nft_leftovers():
        family, name = spec.split()
        subprocess.run(["nft", "delete", "table", family, name], capture_output=True)


def link_exists(name: str) -> bool:
    return subprocess.run(["ip", "link", "show", name], capture_output=True).returncode == 0


def add_node_address(address: str, device: str = "lo") -> None:
    """The node's own address, on the loopback device (no kernel module needed, unlike a dummy
    link): the kubelet and metrics-server bind there, not to every address."""
    subprocess.run(["ip", "addr", "replace", f"{address}/32", "dev", device], check=True,
                   capture_output=True)


def node_address_present(address: str, device: str = "lo") -> bool:
    done = subprocess.run(["ip", "-o", "addr", "show", "dev", device], capture_output=True, text=True)
    return f" {address}/32 " in done.stdout


def remove_node_address(address: str, device: str = "lo") -> bool:
    if not node_address_present(address, device):
        return False
    subprocess.run(["ip", "addr", "del", f"{address}/32", "dev", device], capture_output=True)
    return True


def delete_link(name: str) -> bool:
    if not link_exists(name):
        return False
    subprocess.run(["ip", "link", "delete", name], capture_output=True)
    return True


def mounts_under(*roots: Path) -> list[str]:
    """Mount points under any of `roots`, deepest first."""
    prefixes = [str(root.resolve()) for root in roots]
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if any(point == p or point.startswith(p + "/") for p in prefixes):
            points.append(point)
    return sorted(set(points), key=lambda p: p.count("/"), reverse=True)


def unmount_under(*roots: Path) -> list[str]:
    """Lazily unmount everything under `roots` (pod volumes, sandbox shm, rootfs overlays)."""
    points = mounts_under(*roots)
    for point in points:
        subprocess.run(["umount", "-l", point], capture_output=True)
    return points


def remove_cgroups(name: str = "kubepods") -> list[str]:
    """rmdir the kubelet's cgroup trees in every v1 hierarchy, leaves first (empty once no
    process is left in them)."""
    removed = []
    if not CGROUP_ROOT.is_dir():
        return removed
    for hierarchy in CGROUP_ROOT.iterdir():
        top = hierarchy / name
        if not top.is_dir():
            continue
        for directory in sorted((p for p in top.rglob("*") if p.is_dir()),
                                key=lambda p: len(p.parts), reverse=True) + [top]:
            try:
                directory.rmdir()
                removed.append(str(directory))
            except OSError:
                continue
    return removed


def cgroups_left(name: str = "kubepods") -> list[str]:
    if not CGROUP_ROOT.is_dir():
        return []
    return [str(h / name) for h in CGROUP_ROOT.iterdir() if (h / name).is_dir()]
