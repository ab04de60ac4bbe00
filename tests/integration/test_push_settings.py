"""An ImageUpdateAutomation's `spec.git.push.options` and `spec.git.push.refspec` reach the real
git server: the options are given to its hooks (`git push -o`), the refspec is pushed besides
the branch."""

from __future__ import annotations

import stat
from pathlib import Path

from tests.integration.git_env import clone, git
from tests.integration.homelab_env import HomelabFactory, replaced
from tests.integration.registry_env import RunningRegistry

UPDATE = "cluster/apps/podinfo/image-update.yaml"
HOOK = """#!/bin/sh
i=0
while [ "$i" -lt "${GIT_PUSH_OPTION_COUNT:-0}" ]; do
  eval "echo \\"\\$GIT_PUSH_OPTION_$i\\"" >> "$(dirname "$0")/../push-options.txt"
  i=$((i + 1))
done
"""


def test_push_options_and_refspec_reach_the_server(homelab: HomelabFactory,
                                                   open_registry: RunningRegistry) -> None:
    lab = homelab(open_registry.host)
    bare = lab.bare.path
    git("--git-dir", str(bare), "config", "receive.advertisePushOptions", "true")
    hook = bare / "hooks" / "pre-receive"
    hook.write_text(HOOK)
    hook.chmod(hook.stat().st_mode | stat.S_IXUSR)
    replaced(lab.repo / UPDATE, "    push:\n      branch: main\n",
             "    push:\n      branch: main\n      refspec: HEAD:refs/heads/review\n"
             "      options:\n        merge_request.create: \"\"\n        ci.skip: \"yes\"\n")
    lab.import_tags(lab.repo, "6.5.1\n", "6.5.1\n6.6.0\n")

    done = lab.call("reconcile", "image", "update", "podinfo", "-n", "podinfo", "--repo",
                    str(lab.repo), "--workdir", str(lab.workdir))
    assert done.returncode == 0, done.stderr
    assert lab.bare.subjects()[0] == "Update podinfo image"
    assert lab.bare.rev("review") == lab.bare.rev("main")
    options = (bare / "push-options.txt").read_text().splitlines()
    assert sorted(options) == ["ci.skip=yes", "merge_request.create"]


def test_images_update_says_what_it_does_not_do_in_the_users_checkout(
        homelab: HomelabFactory, open_registry: RunningRegistry, tmp_path: Path) -> None:
    lab = homelab(open_registry.host)
    work = clone(lab.bare.url, tmp_path / "work")
    replaced(work.path / UPDATE, "      messageTemplate: 'Update podinfo image'\n",
             "      messageTemplate: 'Update podinfo image'\n"
             "      signingKey:\n        secretRef:\n          name: gpg\n")
    work.commit({UPDATE: (work.path / UPDATE).read_text()}, "sign")
    lab.import_tags(work.path, "6.5.1\n", "6.5.1\n6.6.0\n")

    done = lab.call("images", "update", "--repo", str(work.path), "--offline")
    assert done.returncode == 0, done.stderr
    assert ("warning: ImageUpdateAutomation podinfo/podinfo: images update does not use "
            "spec.git.commit.signingKey (the commit is not signed): `gitward reconcile image "
            "update`, `apply` and `run` do") in done.stderr
