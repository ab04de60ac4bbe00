"""An ImageUpdateAutomation's `spec.git.commit.signingKey`: the commit gitward pushes is signed
with the OpenPGP key of the Secret's `git.asc` (unlocked with its `passphrase`), by Debian's gpg,
and `git verify-commit` accepts it; a key that does not sign pushes nothing."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from kubernetes import client as kube

from engine.store import queries
from engine.store.db import open_store, state_url
from tests.conftest import require
from tests.integration.homelab_env import Homelab, HomelabFactory, replaced
from tests.integration.kube_env import KubeAPI
from tests.integration.kube_secrets import nowhere, put_secret
from tests.integration.registry_env import RunningRegistry

UPDATE = "cluster/apps/podinfo/image-update.yaml"


@dataclass(frozen=True)
class GpgKey:
    """A passphrase-protected signing key made by gpg: its armored secret key and fingerprint,
    and a keyring (`verifier`) that holds only its public key, to verify with."""

    armored: bytes = field(repr=False)
    passphrase: str = field(repr=False)
    fingerprint: str
    verifier: Path


def gpg(home: Path, *args: str, stdin: bytes = b"") -> str:
    done = subprocess.run(["gpg", "--batch", "--homedir", str(home), *args], input=stdin,
                          capture_output=True, check=True, timeout=120)
    return done.stdout.decode()


@pytest.fixture
def gpg_key(tmp_path: Path) -> Iterator[GpgKey]:
    require(shutil.which("gpg") is not None, "gpg is not installed (apt-get install gnupg)")
    maker, verifier = Path(f"/tmp/gw-{secrets.token_hex(4)}"), tmp_path / "verify-gnupg"
    for home in (maker, verifier):  # gpg-agent's socket path must stay short: /tmp, not tmp_path
        home.mkdir(mode=0o700)
    passphrase = "correct horse " + secrets.token_hex(6)
    try:
        gpg(maker, "--pinentry-mode", "loopback", "--passphrase", passphrase, "--quick-gen-key",
            "Update Bot <bot@example.com>", "ed25519", "sign", "never")
        armored = gpg(maker, "--pinentry-mode", "loopback", "--passphrase", passphrase, "--armor",
                      "--export-secret-keys").encode()
        public = gpg(maker, "--armor", "--export").encode()
        fingerprint = next(line.split(":")[9] for line in gpg(maker, "--with-colons", "--list-keys")
                           .splitlines() if line.startswith("fpr:"))
        gpg(verifier, "--import", stdin=public)
        gpg(verifier, "--import-ownertrust", stdin=f"{fingerprint}:6:\n".encode())
        yield GpgKey(armored, passphrase, fingerprint, verifier)
    finally:
        for home in (maker, verifier):
            subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], check=False,
                           capture_output=True, timeout=60)
        shutil.rmtree(maker, ignore_errors=True)


def signed_lab(homelab: HomelabFactory, registry: RunningRegistry, secret: str) -> Homelab:
    """The homelab whose podinfo automation signs with Secret podinfo/`secret`, and tags that
    move podinfo from 6.5.1 to 6.6.0."""
    lab = homelab(registry.host)
    replaced(lab.repo / UPDATE, "      messageTemplate: 'Update podinfo image'\n",
             "      messageTemplate: 'Update podinfo image'\n"
             f"      signingKey:\n        secretRef:\n          name: {secret}\n")
    lab.import_tags(lab.repo, "6.5.1\n", "6.5.1\n6.6.0\n")
    return lab


def update(lab: Homelab, kube_api: KubeAPI) -> subprocess.CompletedProcess[str]:
    return lab.call("reconcile", "image", "update", "podinfo", "-n", "podinfo", "--repo", str(lab.repo),
                    "--workdir", str(lab.workdir), "--kubeconfig", str(kube_api.kubeconfig))


def verify(lab: Homelab, key: GpgKey) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GNUPGHOME": str(key.verifier)}
    return subprocess.run(["git", "--git-dir", str(lab.bare.path), "verify-commit", "--raw", "main"],
                          env=env, capture_output=True, text=True, check=False, timeout=60)


def secret_values(key: GpgKey) -> list[str | bytes]:
    body = [line for line in key.armored.decode().splitlines() if len(line) > 40]
    return [key.passphrase, key.armored, *body]


def test_the_pushed_commit_is_signed_with_the_secrets_key(
        homelab: HomelabFactory, open_registry: RunningRegistry, kube_api: KubeAPI,
        kube_client: kube.ApiClient, gpg_key: GpgKey) -> None:
    name = f"gpg-{secrets.token_hex(3)}"
    put_secret(kube_client, "podinfo", name, {"git.asc": gpg_key.armored,
                                              "passphrase": gpg_key.passphrase})
    lab = signed_lab(homelab, open_registry, name)
    unsigned = verify(lab, gpg_key)
    assert unsigned.returncode != 0  # the seed commit is not signed: verify-commit can fail

    done = update(lab, kube_api)
    assert done.returncode == 0, done.stderr
    assert lab.bare.subjects()[0] == "Update podinfo image"
    checked = verify(lab, gpg_key)
    assert checked.returncode == 0, checked.stderr
    assert f"VALIDSIG {gpg_key.fingerprint}" in checked.stderr
    nowhere(secret_values(gpg_key), [done.stdout, done.stderr], Path(lab.state))


def test_a_wrong_passphrase_pushes_nothing_and_says_why(
        homelab: HomelabFactory, open_registry: RunningRegistry, kube_api: KubeAPI,
        kube_client: kube.ApiClient, gpg_key: GpgKey) -> None:
    name = f"gpg-{secrets.token_hex(3)}"
    wrong = "not the passphrase " + secrets.token_hex(4)
    put_secret(kube_client, "podinfo", name, {"git.asc": gpg_key.armored, "passphrase": wrong})
    lab = signed_lab(homelab, open_registry, name)
    before = lab.bare.rev()

    done = update(lab, kube_api)
    assert done.returncode == 1
    assert (f"Secret podinfo/{name}: the key in git.asc does not sign: the passphrase does not "
            "unlock it") in done.stdout + done.stderr
    assert lab.bare.rev() == before
    with open_store(state_url(lab.state)) as store:
        [event] = [e for e in queries.list_events(store, object_kind="ImageUpdateAutomation",
                                                  object_name="podinfo/podinfo")
                   if e.reason == "PushFailed"]
    assert "does not unlock it" in event.message
    nowhere([wrong, *secret_values(gpg_key)], [done.stdout, done.stderr], Path(lab.state))
