"""A real Kubernetes API server for the tests: etcd + kube-apiserver v1.20 on loopback, throw-away.

The binaries come from `tests/env/kube.sh build` (Debian's `kubernetes` source package, cached
outside the clone) or from $GITWARD_KUBE_BIN_DIR; `etcd` is Debian's `etcd-server`. Every start
gets free loopback ports, fresh keys and an empty etcd in a temp dir; stopping SIGKILLs each process
group (the data is throw-away and a graceful apiserver shutdown takes over 10 s) and deletes the dir.
Stdlib only, so `kube.sh start` can run it without the virtualenv:

    python -m tests.integration.kube_env [--controller-manager] DIR
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

KUBE_SH = Path(__file__).resolve().parents[1] / "env" / "kube.sh"
TOKEN = "test-admin-token"
READY_TIMEOUT = 60.0
LOG_TAIL_LINES = 25
START_ATTEMPTS = 3
_PR_SET_PDEATHSIG = 1


class KubeEnvError(Exception):
    """The API server could not be found or started."""


@dataclass(frozen=True)
class KubeBinaries:
    apiserver: Path
    controller_manager: Path
    etcd: Path

    @classmethod
    def locate(cls) -> KubeBinaries:
        """$GITWARD_KUBE_BIN_DIR, else the cache `kube.sh bindir` names; `etcd` from PATH."""
        bin_dir = Path(os.environ.get("GITWARD_KUBE_BIN_DIR") or _cache_dir())
        apiserver = bin_dir / "kube-apiserver"
        controller_manager = bin_dir / "kube-controller-manager"
        for binary in (apiserver, controller_manager):
            if not os.access(binary, os.X_OK):
                raise KubeEnvError(f"{binary} is missing: build it with `bash tests/env/kube.sh build` (as root)")
        etcd = shutil.which("etcd")
        if etcd is None:
            raise KubeEnvError("etcd is not installed (apt-get install etcd-server)")
        return cls(apiserver=apiserver, controller_manager=controller_manager, etcd=Path(etcd))


def _cache_dir() -> str:
    done = subprocess.run(["bash", str(KUBE_SH), "bindir"], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:
    """Runs in the child: a test run killed outright must not leave an etcd or apiserver behind."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass(frozen=True)
class _Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tail(self) -> str:
        lines = self.log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
        return "\n".join(f"  {line}" for line in lines)

    def kill(self) -> None:
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.popen.wait()


class KubeAPI:
    """etcd + kube-apiserver (+ kube-controller-manager on request), reachable through `kubeconfig`.

    Use as a context manager, or call `start()` and `stop()`. `workdir` must not exist yet; by
    default a fresh temp dir is used. Either way it is deleted on `stop()`.
    """

    def __init__(
        self,
        binaries: KubeBinaries | None = None,
        *,
        controller_manager: bool = False,
        workdir: Path | None = None,
        ready_timeout: float = READY_TIMEOUT,
    ) -> None:
        self.binaries = binaries or KubeBinaries.locate()
        self.controller_manager = controller_manager
        self.ready_timeout = ready_timeout
        self.token = TOKEN
        self.url = ""
        self._workdir = workdir
        self._root: Path | None = None
        self._processes: list[_Process] = []

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def pids(self) -> list[int]:
        """The running servers' process ids (each leads its own process group)."""
        return [process.popen.pid for process in self._processes]

    @property
    def root(self) -> Path:
        if self._root is None:
            raise KubeEnvError("the API server is not started")
        return self._root

    def __enter__(self) -> KubeAPI:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> KubeAPI:
        """Start on free ports and wait for /readyz; retried when another process took a port."""
        if self._workdir is None:
            self._root = Path(tempfile.mkdtemp(prefix="gitward-kube-"))
        else:
            self._workdir.mkdir(parents=True)
            self._root = self._workdir
        try:
            self._write_credentials()
            for attempt in range(1, START_ATTEMPTS + 1):
                try:
                    self._start_servers(self.root / f"run{attempt}")
                    break
                except _PortTaken:
                    self._kill_all()
            else:
                raise KubeEnvError(f"no free loopback ports after {START_ATTEMPTS} attempts")
            self._write_kubeconfig()
            if self.controller_manager:
                self._start_controller_manager()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        self._kill_all()
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None

    def _kill_all(self) -> None:
        for process in reversed(self._processes):
            process.kill()
        self._processes.clear()

    def _write_credentials(self) -> None:
        key, pub = self.root / "sa.key", self.root / "sa.pub"
        _run(["openssl", "genrsa", "-out", str(key), "2048"])
        _run(["openssl", "rsa", "-in", str(key), "-pubout", "-out", str(pub)])
        (self.root / "tokens.csv").write_text(f"{self.token},admin,admin-uid,system:masters\n")

    def _start_servers(self, run: Path) -> None:
        run.mkdir()
        client, peer, secure = free_port(), free_port(), free_port()
        etcd_url = f"http://127.0.0.1:{client}"
        peer_url = f"http://127.0.0.1:{peer}"
        etcd = self._spawn("etcd", run, [
            str(self.binaries.etcd), "--name", "t", "--data-dir", str(run / "etcd"),
            "--listen-client-urls", etcd_url, "--advertise-client-urls", etcd_url,
            "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
            "--initial-cluster", f"t={peer_url}",
        ])
        apiserver = self._spawn("kube-apiserver", run, [
            str(self.binaries.apiserver), f"--etcd-servers={etcd_url}",
            "--advertise-address=127.0.0.1", "--bind-address=127.0.0.1", f"--secure-port={secure}",
            f"--cert-dir={run / 'certs'}", f"--token-auth-file={self.root / 'tokens.csv'}",
            "--authorization-mode=RBAC",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={self.root / 'sa.pub'}",
            f"--service-account-signing-key-file={self.root / 'sa.key'}",
            "--service-cluster-ip-range=10.0.0.0/24", "--disable-admission-plugins=ServiceAccount",
            "--allow-privileged=true",
        ])
        self.url = f"https://127.0.0.1:{secure}"
        self._wait_ready(apiserver, etcd)

    def _start_controller_manager(self) -> None:
        self._spawn("kube-controller-manager", self.root, [
            str(self.binaries.controller_manager), f"--kubeconfig={self.kubeconfig}",
            "--leader-elect=false", "--port=0", "--secure-port=0",
            "--use-service-account-credentials=false",
            f"--service-account-private-key-file={self.root / 'sa.key'}",
        ])

    def _spawn(self, name: str, directory: Path, argv: Sequence[str]) -> _Process:
        log = directory / f"{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=directory,
                start_new_session=True, preexec_fn=_die_with_parent,
            )
        process = _Process(name, popen, log)
        self._processes.append(process)
        return process

    def _wait_ready(self, apiserver: _Process, etcd: _Process) -> None:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        request = urllib.request.Request(f"{self.url}/readyz", headers={"Authorization": f"Bearer {self.token}"})
        deadline = time.monotonic() + self.ready_timeout
        while True:
            for process in (etcd, apiserver):
                if process.popen.poll() is not None:
                    tail = process.tail()
                    if "address already in use" in tail:
                        raise _PortTaken()
                    raise KubeEnvError(f"{process.name} exited with {process.popen.returncode}:\n{tail}")
            try:
                with urllib.request.urlopen(request, timeout=2, context=context) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise KubeEnvError(
                    f"kube-apiserver was not ready at {self.url}/readyz within {self.ready_timeout:g}s;"
                    f" the end of its log:\n{apiserver.tail()}"
                )
            time.sleep(0.2)

    def _write_kubeconfig(self) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "gitward-test", "cluster": {"server": self.url, "insecure-skip-tls-verify": True}}],
            "users": [{"name": "admin", "user": {"token": self.token}}],
            "contexts": [{"name": "gitward-test", "context": {"cluster": "gitward-test", "user": "admin"}}],
            "current-context": "gitward-test",
        }
        self.kubeconfig.write_text(json.dumps(config, indent=2) + "\n")


class _PortTaken(Exception):
    """A port picked as free was taken before the server bound it."""


def _run(argv: Sequence[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise KubeEnvError(f"{argv[0]} failed: {done.stderr.strip()}")


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM or Ctrl-C (for `kube.sh start`); print the KUBECONFIG line when ready."""
    parser = argparse.ArgumentParser(prog="python -m tests.integration.kube_env", description=main.__doc__)
    parser.add_argument("--controller-manager", action="store_true", help="also run kube-controller-manager")
    parser.add_argument("workdir", type=Path, help="a directory to create for the throw-away data")
    options = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    try:
        with KubeAPI(controller_manager=options.controller_manager, workdir=options.workdir) as api:
            print(f"kube-apiserver at {api.url}")
            print(f"export KUBECONFIG={api.kubeconfig}", flush=True)
            while True:
                signal.pause()
    except KubeEnvError as err:
        print(f"kube_env: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
