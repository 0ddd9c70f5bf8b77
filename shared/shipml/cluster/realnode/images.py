"""Images on the real node without a registry: a pause image made here, the kit's images imported
from the Docker engine with `ctr -n k8s.io images import` (what `kind load docker-image` does)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import tarfile
from pathlib import Path

from shipml.cluster import shell
from shipml.errors import ShipmlError

PAUSE_IMAGE = "shipml.local/pause:3.10"
K8S_NAMESPACE = "k8s.io"  # the containerd namespace the CRI plugin uses


def _blob(data: bytes) -> tuple[str, bytes]:
    return "sha256:" + hashlib.sha256(data).hexdigest(), data


def pause_image_tar(pause_binary: Path, out: Path, name: str = PAUSE_IMAGE) -> Path:
    """An OCI image layout (tar) with one layer holding /pause, entrypoint /pause, uid 65535."""
    layer_raw = io.BytesIO()
    with tarfile.open(fileobj=layer_raw, mode="w", format=tarfile.PAX_FORMAT) as layer:
        info = layer.gettarinfo(str(pause_binary), arcname="pause")
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mode = 0o755
        info.mtime = 0
        with open(pause_binary, "rb") as binary:
            layer.addfile(info, binary)
    diff_id, _ = _blob(layer_raw.getvalue())
    layer_digest, layer_gz = _blob(gzip.compress(layer_raw.getvalue(), mtime=0))
    config = {
        "architecture": "amd64", "os": "linux",
        "config": {"Entrypoint": ["/pause"], "User": "65535:65535"},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }
    config_digest, config_bytes = _blob(json.dumps(config, sort_keys=True).encode())
    manifest = {
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": len(config_bytes)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer_digest, "size": len(layer_gz)}],
    }
    manifest_digest, manifest_bytes = _blob(json.dumps(manifest, sort_keys=True).encode())
    index = {
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": manifest["mediaType"], "digest": manifest_digest,
                       "size": len(manifest_bytes),
                       "platform": {"architecture": "amd64", "os": "linux"},
                       "annotations": {"io.containerd.image.name": name,
                                       "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1]}}],
    }
    files = {
        "oci-layout": json.dumps({"imageLayoutVersion": "1.0.0"}).encode(),
        "index.json": json.dumps(index).encode(),
        **{f"blobs/sha256/{d.split(':')[1]}": b for d, b in
           ((layer_digest, layer_gz), (config_digest, config_bytes), (manifest_digest, manifest_bytes))},
    }
    with tarfile.open(out, "w") as tar:
        for arcname, data in files.items():
            info = tarfile.TarInfo(arcname)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out


def ctr_argv(socket: Path, *args: str) -> list[str]:
    return ["ctr", f"--address={socket}", f"--namespace={K8S_NAMESPACE}", *args]


def import_tar(socket: Path, tar: Path) -> None:
    shell.run(ctr_argv(socket, "images", "import", "--no-unpack=false", str(tar)), timeout=300)


def import_docker_images(socket: Path, images: list[str]) -> list[str]:
    """`docker save IMAGE... | ctr -n k8s.io images import -`: the node then has them without a pull.
    Images Docker does not have are skipped and returned."""
    present = [image for image in images
               if subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode == 0]
    if not present:
        return list(images)
    shell.show(["docker", "save", *present, "|", *ctr_argv(socket, "images", "import", "-")])
    save = subprocess.Popen(["docker", "save", *present], stdout=subprocess.PIPE)
    done = subprocess.run(ctr_argv(socket, "images", "import", "-"), stdin=save.stdout,
                          capture_output=True, text=True, timeout=600)
    save.stdout.close()
    if save.wait() != 0 or done.returncode != 0:
        raise ShipmlError(f"importing {', '.join(present)} into the node failed: "
                          f"{shell.last_error_line(done)}")
    return [image for image in images if image not in present]


def node_images(socket: Path) -> list[str]:
    """Image names the node's containerd holds in the CRI namespace."""
    done = shell.run(ctr_argv(socket, "images", "list", "-q"), echo=False)
    return done.stdout.split()
