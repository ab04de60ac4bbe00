#!/usr/bin/env bash
# A real Kubernetes API server for the tests (see /work/shared/kube-apiserver.md for the recipe).
#
#   kube.sh build                          build kube-apiserver and kube-controller-manager once per
#                                          machine (as root, about 4 minutes) into the cache below
#   kube.sh bindir                         print the cache directory the binaries live in
#   kube.sh start [--controller-manager] [DIR]
#                                          start etcd + kube-apiserver for manual work; prints
#                                          `export KUBECONFIG=...`
#   kube.sh stop [DIR]                     stop what `start` started and delete its throw-away data
#
# No registry ships a kube-apiserver binary, but Debian bookworm ships the whole upstream tree (with
# vendor/) as the `kubernetes` source package, which builds offline with Debian's Go. The build is
# cached outside the clone, keyed on the Debian source version, so only a new machine pays for it.
# Nothing of it goes into git.
set -euo pipefail

# The Debian source version the cache is keyed on. A Debian point release that supersedes it makes
# `build` fail with the versions on offer: bump it here (or set KUBE_DEB_VERSION) when that happens.
KUBE_DEB_VERSION=${KUBE_DEB_VERSION:-1.20.5+really1.20.2-1.1+deb12u1}
CACHE_ROOT=/var/cache/gitward-testenv
BIN_DIR=$CACHE_ROOT/k8s-$KUBE_DEB_VERSION
BINARIES=(kube-apiserver kube-controller-manager)
RUNTIME_DEPS=(etcd-server openssl)
BUILD_DEPS=(golang-go golang-github-modern-go-reflect2-dev rsync make curl "${RUNTIME_DEPS[@]}")
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DEFAULT_RUN_DIR=${TMPDIR:-/tmp}/gitward-kube

die() {
  echo "kube.sh: $*" >&2
  exit 1
}

built() {
  local binary
  for binary in "${BINARIES[@]}"; do
    [[ -x $BIN_DIR/$binary ]] || return 1
  done
}

# "1.20.5+really1.20.2-1.1+deb12u1" -> "1.20.2": the tree Debian actually ships.
upstream_version() {
  local version=${KUBE_DEB_VERSION#*:}
  version=${version%-*}
  echo "${version##*really}"
}

install_packages() {
  local missing=() package
  for package in "$@"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
  done
  ((${#missing[@]})) || return 0
  [[ $(id -u) == 0 ]] || die "${missing[*]} must be installed: run as root"
  echo "kube.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
}

# Download the source package with a private apt state, so the machine's sources.list is untouched.
fetch_source() {
  local work=$1 apt=$1/apt
  mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/parts"
  cat >"$apt/parts/debsrc.sources" <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  local options=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$apt/parts"
    -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache")
  apt-get "${options[@]}" update -qq
  if ! (cd "$work" && apt-get "${options[@]}" source -qq --download-only "kubernetes=$KUBE_DEB_VERSION"); then
    echo "kube.sh: the archive offers kubernetes source versions:" >&2
    apt-cache "${options[@]}" showsrc kubernetes | sed -n 's/^Version: /  /p' >&2
    die "kubernetes=$KUBE_DEB_VERSION is not among them; set KUBE_DEB_VERSION or update the pin in $0"
  fi
}

build() {
  install_packages "${RUNTIME_DEPS[@]}"
  if built; then
    echo "kube.sh: already built; binaries in $BIN_DIR"
    return 0
  fi
  [[ $(id -u) == 0 ]] || die "build installs packages and writes $CACHE_ROOT: run it as root"
  mkdir -p "$CACHE_ROOT"
  exec 9>"$CACHE_ROOT/.build.lock"
  flock 9
  if built; then
    echo "kube.sh: built by a concurrent run; binaries in $BIN_DIR"
    return 0
  fi

  local started=$SECONDS upstream
  upstream=$(upstream_version)
  install_packages "${BUILD_DEPS[@]}"
  WORK=$(mktemp -d "$CACHE_ROOT/build.XXXXXX")
  trap 'rm -rf "$WORK"' EXIT
  chmod 755 "$WORK" # apt downloads as the _apt user
  fetch_source "$WORK"

  mkdir "$WORK/src"
  tar xzf "$WORK"/kubernetes_*.orig.tar.gz -C "$WORK/src"
  local trees=("$WORK"/src/*/)
  ((${#trees[@]} == 1)) || die "expected one directory in the source tarball, found: ${trees[*]}"
  local tree=${trees[0]%/}

  # The vendored reflect2 v1.0.1 segfaults under Go >= 1.18 on the first CRD; use Debian's v1.0.2.
  local reflect2=$tree/vendor/github.com/modern-go/reflect2
  rm -rf "$reflect2" && mkdir "$reflect2"
  cp /usr/share/gocode/src/github.com/modern-go/reflect2/*.go \
    /usr/share/gocode/src/github.com/modern-go/reflect2/*.s "$reflect2/"
  sed -i 's#github.com/modern-go/reflect2 v1.0.1#github.com/modern-go/reflect2 v1.0.2#g' \
    "$tree/go.mod" "$tree/vendor/modules.txt"

  mkdir -p "$tree/.go/src/k8s.io" && ln -sfn ../../.. "$tree/.go/src/k8s.io/kubernetes"
  echo "kube.sh: building Kubernetes v$upstream (Debian $KUBE_DEB_VERSION); this takes minutes"
  (
    cd "$tree"
    export HOME=$WORK GOPATH=$tree/.go GOPROXY=off GOFLAGS=-mod=vendor CGO_ENABLED=0 GO111MODULE=on
    export KUBE_GIT_VERSION=v$upstream KUBE_GIT_TREE_STATE=clean
    export KUBE_GIT_MAJOR=${upstream%%.*} KUBE_GIT_MINOR=$(cut -d. -f2 <<<"$upstream")
    make WHAT="cmd/kube-apiserver cmd/kube-controller-manager"
  )

  mkdir "$WORK/out"
  local binary
  for binary in "${BINARIES[@]}"; do
    cp "$tree/_output/bin/$binary" "$WORK/out/"
  done
  "$WORK/out/kube-apiserver" --version | grep -qx "Kubernetes v$upstream" \
    || die "the built kube-apiserver does not report v$upstream"
  rm -rf "$BIN_DIR"
  mv "$WORK/out" "$BIN_DIR"
  echo "kube.sh: built in $((SECONDS - started))s; binaries in $BIN_DIR"
}

python_bin() {
  if [[ -x $REPO_ROOT/.venv/bin/python ]]; then
    echo "$REPO_ROOT/.venv/bin/python"
  else
    echo python3
  fi
}

start() {
  local options=() dir=$DEFAULT_RUN_DIR
  while (($#)); do
    case $1 in
      --controller-manager) options+=(--controller-manager) ;;
      -*) die "start: unknown option $1" ;;
      *) dir=$1 ;;
    esac
    shift
  done
  [[ -e $dir ]] && die "$dir exists: stop that server first (kube.sh stop $dir)"
  mkdir -p "$dir"
  (cd "$REPO_ROOT" && exec nohup "$(python_bin)" -m tests.integration.kube_env "${options[@]}" "$dir/api" \
    >"$dir/serve.log" 2>&1 </dev/null) &
  echo $! >"$dir/serve.pid"
  local pid=$!
  while ! grep -q '^export KUBECONFIG=' "$dir/serve.log"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      cat "$dir/serve.log" >&2
      rm -rf "$dir"
      die "the API server did not start"
    fi
    sleep 0.2
  done
  grep '^export KUBECONFIG=' "$dir/serve.log"
}

stop() {
  local dir=${1:-$DEFAULT_RUN_DIR} pid
  [[ -f $dir/serve.pid ]] || die "no server started in $dir"
  pid=$(<"$dir/serve.pid")
  kill -TERM "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do
    sleep 0.1
  done
  rm -rf "$dir"
  echo "kube.sh: stopped and removed $dir"
}

case ${1:-} in
  build) build ;;
  bindir) echo "$BIN_DIR" ;;
  start) shift && start "$@" ;;
  stop) shift && stop "$@" ;;
  *) die "usage: kube.sh build | bindir | start [--controller-manager] [DIR] | stop [DIR]" ;;
esac
