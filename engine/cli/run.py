"""`gitward run`: the controller loop, reconciling every object on its interval until stopped."""

from __future__ import annotations

import os
import random
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path
from types import FrameType

import click

from engine.cli.repo import load, repo_option, spec
from engine.cli.kinds import SOURCE_GIT, find
from engine.cli.gitaccess import TOKEN_ENV, ssh_command_for, ssh_key_option, workdir_option
from engine.cli.state import holder_name, open_for_reading, open_for_writing
from engine.cli.ui import TOKEN_ENV as UI_TOKEN_ENV, ui_listener
from engine.clock import utcnow
from engine.errors import UserError
from engine.observe.httpclient import observing_answers
from engine.observe.kubeenv import cluster_configured
from engine.reconcile.health import Pulse, Readiness
from engine.reconcile.loop import Access, Controller
from engine.reconcile.probes import serving_probes
from engine.reconcile.repo import Loaded
from engine.reconcile.telemetry import LogFormat, LogLevel, Metrics, RunLog


@click.command("run")
@repo_option
@ssh_key_option
@workdir_option
@click.option("--kubeconfig", type=click.Path(dir_okay=False, path_type=Path),
              help="The cluster's kubeconfig (else KUBECONFIG, in-cluster); without a cluster, "
                   "Kustomizations are not reconciled.")
@click.option("--context", "kube_context", help="The kubeconfig context.")
@click.option("--rules-from", metavar="[NS/]NAME",
              help="Read the rules from this GitRepository's latest fetched revision (re-read on "
                   "each new one), as Flux reads its objects from what its sync applied; "
                   "--repo gives the rules to start with.")
@click.option("--once", is_flag=True, help="Reconcile every object once, then exit.")
@click.option("--log-format", type=click.Choice([f.value for f in LogFormat]), default="text",
              show_default=True, help="One line per reconcile on stderr: logfmt text or JSON.")
@click.option("--log-level", type=click.Choice([lv.name.lower() for lv in LogLevel]),
              default="info", show_default=True)
@click.option("--metrics-addr", metavar="HOST:PORT",
              help="Serve Prometheus metrics on http://HOST:PORT/metrics, and the probes "
                   "/healthz (the loop is alive) and /readyz (the store answers and this "
                   "process holds its lease) beside them (off unless given).")
@click.option("--ui-addr", metavar="HOST:PORT",
              help="Serve the read-only pages of `gitward ui` on HOST:PORT (off unless given); "
                   "an address other than loopback needs a token.")
@click.option("--ui-token", metavar="T", default=None,
              help=f"Require this token on every page request (env {UI_TOKEN_ENV}).")
@click.pass_context
def run(ctx: click.Context, repo: Path, ssh_key: Path | None, workdir: Path,
        kubeconfig: Path | None, kube_context: str | None, rules_from: str | None, once: bool,
        log_format: str, log_level: str, metrics_addr: str | None, ui_addr: str | None,
        ui_token: str | None) -> int:
    """Run the controller loop: fetch sources, scan image repositories, push image updates and
    (with a cluster) apply Kustomizations, each on its own interval, until SIGTERM or Ctrl-C.

    The rules are read from the checkout `--repo` and read again when its files change (or,
    with `--rules-from`, from that GitRepository's latest revision); rules with errors are logged
    and the previous ones kept. A failed object is retried with backoff without holding up the
    others; suspended objects are left alone. A stop request lets the object being reconciled
    finish, then exits 0. Several `gitward run` may share a store: a lease per object keeps them
    off the same object. `gitward reconcile` elsewhere asks this process through the store. The
    rules' `alert`s are sent after each pushed image update and when an object starts failing.

    \b
    Examples:
      gitward run --repo . --ssh-key ~/.ssh/homelab-rw --kubeconfig ~/.kube/config
      gitward run --repo . --once --log-format json
      gitward run --repo . --metrics-addr 127.0.0.1:9090 --ui-addr 127.0.0.1:8080
      gitward run --repo /work/repo --rules-from flux-system --kubeconfig ~/.kube/config
    """
    listen = _address(metrics_addr) if metrics_addr else None
    pages = ui_listener(ui_addr, ui_token, "--ui-addr", "--ui-token") if ui_addr else None
    log = RunLog(sys.stderr, LogFormat(log_format), LogLevel[log_level.upper()], utcnow)
    stop = threading.Event()
    configured = cluster_configured(kubeconfig, kube_context)
    holder = holder_name()
    with ExitStack() as stack, _stop_on_signals(stop):
        store = stack.enter_context(open_for_writing(ctx))
        metrics = pulse = None
        if listen is not None:
            metrics, pulse = Metrics(), Pulse()
            stack.enter_context(_serving(metrics, pulse, Readiness(store, holder, utcnow), *listen))
        cluster, hints, read_secret = None, {}, None
        if configured:  # the kubernetes client only then: a pass without a cluster never loads it
            from engine.observe.cluster import connect
            from engine.reconcile.live import live_sources, secret_reader
            cluster = stack.enter_context(connect(kubeconfig, kube_context))
            hints, read_secret = live_sources(cluster), secret_reader(cluster)
        loaded = load(repo, hints=hints)
        rules = loaded.one().rules
        rules_source = find(SOURCE_GIT, rules, rules_from, "flux-system").key if rules_from else None
        access = Access(workdir=workdir, holder=holder, ssh_command=ssh_command_for(ssh_key),
                        token=os.environ.get(TOKEN_ENV) or None, cluster=cluster,
                        read_secret=read_secret)
        controller = Controller(store, rules, repo, access, log, clock=utcnow, rng=random.Random(),
                                stop=stop, metrics=metrics, rules_source=rules_source,
                                spec=spec(repo), hints=hints, pulse=pulse)
        if pages is not None:
            stack.enter_context(_pages(ctx, loaded, controller, *pages))
        controller.run(once=once)
    return 0


@contextmanager
def _pages(ctx: click.Context, loaded: Loaded, controller: Controller, listener: socket.socket,
           token: str | None) -> Iterator[None]:
    """The UI beside the loop, over a read-only store and the rules the loop holds now."""
    from engine.ui.app import serving_beside

    store = open_for_reading(ctx)
    [cluster] = loaded.clusters

    def rules() -> Loaded:
        return replace(loaded, clusters=(replace(cluster, rules=controller.rules),))

    try:
        with serving_beside(rules, store, listener, token):
            yield
    finally:
        if store is not None:
            store.close()


def _address(text: str) -> tuple[str, int]:
    """`HOST:PORT` (IPv6 as `[::1]:PORT`) -> (host, port), or a UserError naming the option."""
    host, sep, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise UserError(f"--metrics-addr {text}: expected HOST:PORT, e.g. 127.0.0.1:9090")
    return host, int(port)


@contextmanager
def _serving(metrics: Metrics, pulse: Pulse, readiness: Readiness, host: str,
             port: int) -> Iterator[None]:
    """Serve /metrics, /healthz and /readyz for the duration of the run, and count the
    registries' answers."""
    with ExitStack() as stack:
        try:
            stack.enter_context(serving_probes(host, port, metrics, healthz=pulse.alive,
                                               readyz=readiness.ready))
        except OSError as err:
            raise UserError(f"--metrics-addr {host}:{port}: cannot listen: "
                            f"{err.strerror or err}") from err
        stack.enter_context(observing_answers(metrics.registry_answered))
        yield


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set `stop` instead of raising, so no reconcile is cut off midway."""
    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
