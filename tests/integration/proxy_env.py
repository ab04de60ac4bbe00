"""A real HTTP proxy for the tests: Debian's `tinyproxy`, on loopback, with Basic auth.

It forwards plain HTTP requests (`GET http://host/...`) and tunnels HTTPS (`CONNECT host:port`),
as corporate proxies do, and refuses a client without the right `Proxy-Authorization` (407). Its
log, written to a temp dir, names every request it served: a test reads it to show that traffic
went through the proxy and not around it.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.integration.processes import stop_process
from tests.integration.registry_env import START_TIMEOUT, free_port

TINYPROXY = "tinyproxy"


class ProxyEnvError(Exception):
    """The proxy could not be started."""


@dataclass
class RunningProxy:
    """A `tinyproxy -d` process on a loopback port; `log` holds one line per request."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path
    user: str
    password: str = field(repr=False)

    @property
    def address(self) -> str:
        """What a proxySecretRef Secret's `address` holds."""
        return f"http://127.0.0.1:{self.port}"

    def requests(self) -> list[str]:
        """The request lines tinyproxy logged (`CONNECT 127.0.0.1:5000 HTTP/1.1`, `GET http://...`)."""
        found = []
        for line in self.log.read_text(errors="replace").splitlines():
            _, marker, request = line.partition("): ")
            if marker and "Request (file descriptor" in line:
                found.append(request.strip())
        return found

    def stop(self) -> None:
        stop_process(self.process)


def start_proxy(workdir: Path) -> RunningProxy:
    """tinyproxy with Basic auth for a fresh user and password, logging every request."""
    binary = shutil.which(TINYPROXY)
    if binary is None:
        raise ProxyEnvError("tinyproxy is not installed (apt-get install tinyproxy)")
    workdir.mkdir(parents=True, exist_ok=True)
    port, log = free_port(), workdir / "tinyproxy.log"
    user, password = "proxy-user", "proxy-pw-" + secrets.token_hex(8)
    config = workdir / "tinyproxy.conf"
    config.write_text("\n".join([
        f"Port {port}", "Listen 127.0.0.1", "Timeout 60", f'LogFile "{log}"', "LogLevel Info",
        "MaxClients 50", "DisableViaHeader Yes", f"BasicAuth {user} {password}", "",
    ]))
    with (workdir / "tinyproxy.out").open("wb") as out:
        process = subprocess.Popen([binary, "-d", "-c", str(config)], stdout=out,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    running = RunningProxy(process, port, log, user, password)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            detail = (workdir / "tinyproxy.out").read_text(errors="replace")[-2000:]
            raise ProxyEnvError(f"tinyproxy exited with {process.returncode}: {detail}")
        if log.is_file() and "listening on" in log.read_text(errors="replace").lower():
            return running
        time.sleep(0.02)
    running.stop()
    raise ProxyEnvError(f"tinyproxy did not listen on 127.0.0.1:{port} within {START_TIMEOUT:g}s")
