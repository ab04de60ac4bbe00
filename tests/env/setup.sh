#!/usr/bin/env bash
# Install the real parts the test suite starts, so README's test command runs every test on a
# fresh Debian machine: git over ssh (openssh), PostgreSQL, an OCI registry (docker-registry),
# gpg for signed commits, an HTTP proxy (tinyproxy), headless Chromium and its driver (the UI
# tests), promtool (Debian's prometheus: the alert and dashboard queries of deploy/monitoring/),
# and a kube-apiserver + etcd built once per machine from Debian's source package
# (tests/env/kube.sh). Idempotent: a machine that has them
# all installs nothing. Needs root, or sudo without a password, the first time.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export DEBIAN_FRONTEND=noninteractive

PACKAGES=(git openssh-server openssh-client postgresql docker-registry gnupg tinyproxy chromium chromium-driver prometheus)

as_root() {
  if ((EUID == 0)); then
    "$@"
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo -n --preserve-env=DEBIAN_FRONTEND "$@"
  else
    echo "tests/env/setup.sh: installing $* needs root (or passwordless sudo)" >&2
    exit 1
  fi
}

missing=()
for package in "${PACKAGES[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if ((${#missing[@]})); then
  as_root apt-get update -qq
  as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# kube.sh build is a no-op on a machine that has the cached binaries and etcd.
kube_bin=$(bash tests/env/kube.sh bindir)
if ! [[ -x $kube_bin/kube-apiserver && -x $kube_bin/kube-controller-manager ]] || ! dpkg -s etcd-server >/dev/null 2>&1; then
  as_root bash tests/env/kube.sh build
fi
