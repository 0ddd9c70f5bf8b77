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


def docker_image_id(image: str) -> str | None:
    done = subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}", image], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else None


def import_docker_images(socket: Path, images: list[str], record: Path | None = None) -> list[str]:
    """`docker save IMAGE... | ctr -n k8s.io images import -`: the node then has them without a pull.
    Images Docker does not have are skipped and returned. With `record` (a JSON file beside the
    node's persistent image store), an image already imported with the same Docker id is skipped."""
    ids = {image: docker_image_id(image) for image in images}
    known = json.loads(record.read_text()) if record is not None and record.exists() else {}
    on_node = set(node_images(socket))
    present = [image for image in images if ids[image] and not (
        known.get(image) == ids[image] and normalized(image) in on_node)]
    if not present:
        if any(ids.values()):
            print(f"  images already on the node: {', '.join(i for i in images if ids[i])}")
        return [image for image in images if not ids[image]]
    shell.show(["docker", "save", *present, "|", *ctr_argv(socket, "images", "import", "-")])
    save = subprocess.Popen(["docker", "save", *present], stdout=subprocess.PIPE)
    done = subprocess.run(ctr_argv(socket, "images", "import", "-"), stdin=save.stdout,
                          capture_output=True, text=True, timeout=600)
    save.stdout.close()
    if save.wait() != 0 or done.returncode != 0:
        raise ShipmlError(f"importing {', '.join(present)} into the node failed: "
                          f"{shell.last_error_line(done)}")
    if record is not None:
        record.write_text(json.dumps({**known, **{image: ids[image] for image in present}}, indent=1))
    return [image for image in images if not ids[image]]


def normalized(image: str) -> str:
    """How containerd names a Docker Hub short name: docker.io/library/NAME:TAG."""
    first = image.split("/")[0]
    if "/" not in image:
        return f"docker.io/library/{image}"
    if "." in first or ":" in first or first == "localhost":
        return image
    return f"docker.io/{image}"


def node_images(socket: Path) -> list[str]:
    """Image names the node's containerd holds in the CRI namespace."""
    done = shell.run(ctr_argv(socket, "images", "list", "-q"), echo=False)
    return done.stdout.split()
