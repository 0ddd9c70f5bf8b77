#!/usr/bin/env bash
# Make a Docker engine answer and the local base image exist, so the `docker` tests run for real.
#
# Run as root from the repository root, after the venv is installed at .venv. Idempotent: each step
# is skipped when its result is already there. No container registry is reachable from CI machines
# (nor from many classrooms), so the `python:3.11-slim` base image is built locally from Debian
# packages by `shipml docker base-image` (debootstrap + docker import).
#
# Environment:
#   SHIPML_DOCKERD_LOG   where the background dockerd writes (default /var/log/dockerd.log)
#   SHIPML_DOCKER_WAIT   seconds to wait for the engine to answer (default 60)
#   SHIPML_BASE_IMAGE    tag of the base image to build when missing (default python:3.11-slim)
#   SHIPML_CA_BUNDLE     CA bundle baked into the base image (default: the host's bundle)
#   SHIPML_SKIP_PREBUILD set to 1 to skip building the kit's images here (the tests build them)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."  # the repository root, wherever we are called from
source .ci/lib.sh
started=$SECONDS

dockerd_log=${SHIPML_DOCKERD_LOG:-/var/log/dockerd.log}
wait_seconds=${SHIPML_DOCKER_WAIT:-60}
base_image=${SHIPML_BASE_IMAGE:-python:3.11-slim}
ca_bundle=${SHIPML_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

engine_answers() { timeout 10 docker info >/dev/null 2>&1; }

has_candidate() {
    # True when Debian's archive offers the package (the compose v2 plugin is not in bookworm).
    local candidate
    candidate=$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}')
    [[ -n "$candidate" && "$candidate" != "(none)" ]]
}

if [[ $EUID -ne 0 ]]; then
    log "must run as root (it installs packages and starts dockerd)" >&2
    exit 1
fi

if engine_answers; then
    log "a Docker engine already answers"
else
    if ! command -v dockerd >/dev/null 2>&1; then
        packages=(docker.io docker-compose)
        apt_update_once
        for plugin in docker-compose-plugin docker-compose-v2; do
            if has_candidate "$plugin"; then packages+=("$plugin"); break; fi
        done
        apt_install "${packages[@]}"
    fi
    if ! engine_answers; then
        # Debian's postinst cannot start the service without an init system: start it ourselves.
        if [[ -S /var/run/docker.sock ]] && ! pgrep -x dockerd >/dev/null; then
            rm -f /var/run/docker.sock /var/run/docker.pid  # left by a dockerd that died
        fi
        if ! pgrep -x dockerd >/dev/null; then
            log "starting dockerd (log: $dockerd_log)"
            # Its own session: dockerd outlives this script and a Ctrl-C of the CI run.
            setsid nohup dockerd >>"$dockerd_log" 2>&1 </dev/null &
        fi
        deadline=$((SECONDS + wait_seconds))
        until engine_answers; do
            if ((SECONDS >= deadline)); then
                log "dockerd did not answer within ${wait_seconds}s; last lines of $dockerd_log:" >&2
                tail -n 20 "$dockerd_log" >&2 || true
                exit 1
            fi
            sleep 1
        done
        log "dockerd answers"
    fi
fi

if docker image inspect "$base_image" >/dev/null 2>&1; then
    log "base image $base_image exists"
else
    apt_install debootstrap
    ca_args=()
    [[ -f "$ca_bundle" ]] && ca_args=(--ca-bundle "$ca_bundle")
    log "building base image $base_image from Debian packages"
    nice .venv/bin/shipml docker base-image --tag "$base_image" "${ca_args[@]}"
fi

# Warm the layer cache once: the notebooks and the tests then build the kit's images in seconds.
# The classic builder (DOCKER_BUILDKIT=0) is the one the Docker SDK and docker-compose 1.29 use, so
# they share this cache; BuildKit keeps a cache of its own.
if [[ "${SHIPML_SKIP_PREBUILD:-0}" != 1 ]]; then
    log "model repositories for the images (shipml docker models)"
    nice .venv/bin/shipml docker models --out artifacts
    for spec in "serving shipml-serving:0.1.0 Dockerfile" \
                "serving-sklearn shipml-serving:0.1.0-sklearn Dockerfile" \
                "batch shipml-batch:0.1.0 Dockerfile" \
                "- shipml-edge:0.1.0 edge.Dockerfile"; do
        read -r target tag dockerfile <<<"$spec"
        target_args=()
        [[ "$target" != - ]] && target_args=(--target "$target")
        built=$SECONDS
        DOCKER_BUILDKIT=0 nice docker build -q -f "deploy/docker/$dockerfile" "${target_args[@]}" \
            --build-arg "BASE_IMAGE=$base_image" -t "$tag" . >/dev/null
        log "built $tag in $((SECONDS - built))s ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}'))"
    done
fi

log "done in $((SECONDS - started))s"
