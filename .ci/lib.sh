# Shared by .ci/setup.d/*.sh (source it): one way to log and to install Debian packages.
#   source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# log() prefixes the calling script's name; apt_install installs only the packages that are missing,
# with `apt-get update` at most once per script, and waits for a dpkg lock held by someone else.

ci_script=$(basename "${BASH_SOURCE[1]:-$0}" .sh)  # the script that sourced this file
log() { printf '[%s] %s\n' "$ci_script" "$*"; }

apt_updated=0
apt_update_once() {
    ((apt_updated)) && return 0
    log "apt-get update"
    apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null
    apt_updated=1
}

apt_install() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' \
            || missing+=("$pkg")
    done
    ((${#missing[@]})) || return 0
    if ((EUID != 0)); then
        log "must run as root to install ${missing[*]} (apt-get install ${missing[*]})" >&2
        return 1
    fi
    apt_update_once
    log "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends \
        "${missing[@]}" >/dev/null
}
