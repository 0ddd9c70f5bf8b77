#!/usr/bin/env bash
# Install Docker Compose v2 (`docker compose`) as a Docker CLI plugin, built from source.
#
# Debian bookworm packages only docker-compose 1.29 (Python); the v2 plugin is not in its archive and
# no release binary can be downloaded here. Compose v2 is a Go module, so it is built with the Go
# toolchain from the Go module proxy at a pinned release, cached, and linked into the CLI's plugin
# folder. Idempotent: skipped when the plugin already answers with the pinned version; a cached
# binary is reused without building.
#
# Environment:
#   SHIPML_CACHE_DIR          cache root (default ${XDG_CACHE_HOME:-~/.cache}/shipml)
#   SHIPML_COMPOSE_VERSION    the release to build (default below)
#   SHIPML_COMPOSE_PLUGIN_DIR where the plugin goes (default /usr/local/lib/docker/cli-plugins)
#   SHIPML_GO                 the go binary (default: go on PATH, else /usr/local/go/bin/go)
set -euo pipefail

log() { printf '[25-compose-v2] %s\n' "$*"; }
started=$SECONDS

version=${SHIPML_COMPOSE_VERSION:-v2.40.3}
cache_root=${SHIPML_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/shipml}
plugin_dir=${SHIPML_COMPOSE_PLUGIN_DIR:-/usr/local/lib/docker/cli-plugins}
binary="$cache_root/compose-v2/$version/docker-compose"
plugin="$plugin_dir/docker-compose"

plugin_version() { "$1" version --short 2>/dev/null | sed 's/^v//'; }

if [[ -x "$plugin" && "$(plugin_version "$plugin")" == "${version#v}" ]]; then
    log "docker compose ${version} is installed ($plugin)"
    exit 0
fi

if [[ ! -x "$binary" ]]; then
    go=${SHIPML_GO:-$(command -v go || echo /usr/local/go/bin/go)}
    if [[ ! -x "$go" ]]; then
        log "no Go toolchain (looked for go on PATH and /usr/local/go/bin/go): cannot build compose v2" >&2
        log "the compose tests will skip v2 with that reason; docker-compose 1.29 still runs them" >&2
        exit 0
    fi
    log "building github.com/docker/compose/v2 ${version} with $("$go" version | cut -d' ' -f3) (a few minutes once, cached)"
    mkdir -p "$(dirname "$binary")"
    work=$(mktemp -d "$cache_root/compose-v2/build-XXXXXX")
    trap 'rm -rf "$work"' EXIT
    # `go install module/cmd@version` refuses modules whose go.mod has exclude directives (compose's
    # does), so: fetch the module's source through the proxy, build it as the main module.
    # GOFLAGS=-mod=mod: resolve from its own go.mod/go.sum (the zip has no vendor folder).
    # CGO off: a static binary, like the released ones.
    source=$(GOFLAGS=-mod=mod "$go" mod download -json "github.com/docker/compose/v2@${version}" \
        | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    [[ -d "$source" ]] || { log "go mod download gave no source folder" >&2; exit 1; }
    cp -r "$source" "$work/src" && chmod -R u+w "$work/src"
    (cd "$work/src" && GOFLAGS=-mod=mod CGO_ENABLED=0 GOTOOLCHAIN=local nice "$go" build -trimpath \
        -ldflags "-s -w -X github.com/docker/compose/v2/internal.Version=${version}" \
        -o "$work/docker-compose" ./cmd)
    mv "$work/docker-compose" "$binary"
fi

mkdir -p "$plugin_dir"
install -m 0755 "$binary" "$plugin"  # a copy: the plugin works even if the cache is cleared
if ! docker compose version >/dev/null 2>&1; then
    log "the plugin is at $plugin but 'docker compose version' fails:" >&2
    docker compose version >&2 || true
    exit 1
fi
log "$(docker compose version) (plugin $plugin -> $binary) in $((SECONDS - started))s"
