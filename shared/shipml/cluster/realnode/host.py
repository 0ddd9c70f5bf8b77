"""What a real node changes on the host, and how it is put back.

The kubelet sets kernel tunables when it starts (`vm.overcommit_memory` 0 -> 1, `kernel.panic`,
`kernel.panic_on_oops`, the key quotas), kube-proxy sets `route_localnet`, and both leave firewall
chains behind. Other work on the machine depends on the defaults (the grader's memory limits need
overcommit heuristics), so the node snapshots them before it starts, restores them once it is
Ready and again at teardown, and removes every KUBE-*/CNI-* chain, the CNI bridge, the node's
dummy interface, leftover mounts and the kubelet's cgroups.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

SYSCTLS = (
    "vm.overcommit_memory", "vm.panic_on_oom", "kernel.panic", "kernel.panic_on_oops",
    "kernel.keys.root_maxkeys", "kernel.keys.root_maxbytes", "net.ipv4.conf.all.route_localnet",
    "net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables", "net.netfilter.nf_conntrack_max",
)
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
                    args = re.findall(r'"[^"]*"|\S+', match.group(2))
                    args = [a[1:-1] if a.startswith('"') else a for a in args]
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


def add_dummy_address(name: str, address: str) -> None:
    """The node's own address on a dummy interface: the kubelet binds there, not to every address."""
    if not link_exists(name):
        subprocess.run(["ip", "link", "add", name, "type", "dummy"], check=True, capture_output=True)
    subprocess.run(["ip", "addr", "replace", f"{address}/32", "dev", name], check=True,
                   capture_output=True)
    subprocess.run(["ip", "link", "set", name, "up"], check=True, capture_output=True)


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
