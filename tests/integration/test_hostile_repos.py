"""A corpus of hostile repositories: each one a located error or a refusal, never a traceback.

Every case is built here in a temp dir: `repo/` is the checkout, `outside/` beside it holds what
a repository must never reach (its "secret" must never be printed). Each case runs the CLI in
process (`engine.cli.main`, as `gitward` does) and asserts the exit code and the exact located
lines it prints. Cases that run the real kustomize need `kubectl` or `kustomize` on PATH.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.cli import main
from tests.conftest import require

SECRET = "s3cret-never-printed"
REFUSED = "is a symbolic link that resolves outside the repository: refused, as source-controller confines a source to its tree (the target is not read)"
LOOP = "is a symbolic link loop: refused (it resolves to no file)"
DANGLING = "is a symbolic link to nothing: not read (its target does not exist)"
SYNC = "repo/clusters/prod/flux-system/gotk-sync.yaml"

GOTK = """\
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: flux-system
  namespace: flux-system
spec:
  interval: 1m0s
  ref:
    branch: main
  url: ssh://git@example.com/hostile
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: flux-system
  namespace: flux-system
spec:
  interval: 10m0s
  path: ./clusters/prod
  prune: true
  sourceRef:
    kind: GitRepository
    name: flux-system
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: apps
  namespace: flux-system
spec:
  interval: 10m0s
  path: {path}
  prune: true
  sourceRef:
    kind: GitRepository
    name: flux-system
"""
APPS_AT = "repo/clusters/prod/flux-system/gotk-sync.yaml:26:1"
"""Where the `apps` Kustomization stands in GOTK (its `kind:` line)."""

CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  key: {value}\n"
RULES = 'source git {name} {{\n  url "https://example.com/{name}"\n  branch "main"\n}}\n'
POLICY = ('apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nmetadata:\n  name: leak\n'
          f'  namespace: flux-system\nspec:\n  imageRepositoryRef:\n    name: {SECRET}\n'
          '  policy:\n    alphabetical: {}\n')


@dataclass(frozen=True)
class Case:
    """One hostile repository: how to build it, the command, and what it must print."""

    build: Callable[[Path], None]
    args: tuple[str, ...]
    code: int
    lines: tuple[str, ...]
    needs_kustomize: bool = False


def files(**written: str) -> Callable[[Path], None]:
    """Files to write, by path under the temp dir (`repo/...`, `outside/...`); `__` is `/`."""
    def build(base: Path) -> None:
        for name, text in written.items():
            path = base / name.replace("__", "/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    return build


def link(target: str, at: str) -> Callable[[Path], None]:
    """A symbolic link `at` (under the temp dir) holding `target` as written."""
    def build(base: Path) -> None:
        path = base / at
        path.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, path)
    return build


def both(*steps: Callable[[Path], None]) -> Callable[[Path], None]:
    def build(base: Path) -> None:
        for step in steps:
            step(base)
    return build


def outside(base: Path) -> None:
    """What lies beside the repository: files a hostile repository would like to read."""
    for name, text in {"secret.rules": RULES.format(name=SECRET), "cm.yaml": CONFIGMAP.format(name="leak", value=SECRET),
                       "policy.yaml": POLICY, "secret.txt": SECRET, "secret.env": f"KEY={SECRET}\n",
                       "patch.yaml": CONFIGMAP.format(name="app", value=SECRET),
                       "base/kustomization.yaml": "resources:\n- cm.yaml\n",
                       "base/cm.yaml": CONFIGMAP.format(name="base", value=SECRET),
                       "comp/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n"}.items():
        path = base / "outside" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def cluster(path: str) -> Callable[[Path], None]:
    """A bootstrapped cluster whose `apps` Kustomization builds `path`."""
    return files(**{"repo/clusters/prod/flux-system/gotk-sync.yaml": GOTK.format(path=path)})


def app(kustomization: str, **extra: str) -> Callable[[Path], None]:
    """A cluster whose `apps` builds ./apps, holding this kustomization.yaml (and `extra`)."""
    return both(cluster("./apps"), files(**{"repo/apps/kustomization.yaml": kustomization,
                                            "repo/apps/cm.yaml": CONFIGMAP.format(name="app", value="ok"),
                                            **{f"repo/apps/{k}": v for k, v in extra.items()}}))


def refused_rule(at: str) -> str:
    return f"{at}: error: {REFUSED}"


def kust(line: int, message: str, column: int = 3) -> str:
    return f"repo/apps/kustomization.yaml:{line}:{column}: error: {message}"


def ks(message: str) -> str:
    return f"{APPS_AT}: error: Kustomization flux-system/apps: spec.path {message}"


CHECK = ("check", "--repo", "repo")
BUILD = ("build", "kustomization", "apps", "--repo", "repo")
RULE = files(**{"repo/ok.rules": RULES.format(name="fine")})

CASES: dict[str, Case] = {
    # -- rule files and manifests linked outside, or in a loop -----------------------------------
    "rules linked to /etc/passwd": Case(both(RULE, link("/etc/passwd", "repo/x.rules")), CHECK, 2,
                                        (refused_rule("repo/x.rules"),)),
    "rules linked to a file beside the repo": Case(both(RULE, link("../outside/secret.rules", "repo/x.rules")),
                                                   CHECK, 2, (refused_rule("repo/x.rules"),)),
    "rules linked by an absolute path outside": Case(both(RULE, lambda b: os.symlink(b / "outside/secret.rules", b / "repo/x.rules")),
                                                     CHECK, 2, (refused_rule("repo/x.rules"),)),
    "rules linked to /dev/zero": Case(both(RULE, link("/dev/zero", "repo/zero.rules")), CHECK, 2,
                                      (refused_rule("repo/zero.rules"),)),
    "rules linked to /proc/self/environ": Case(both(RULE, link("/proc/self/environ", "repo/env.rules")), CHECK, 2,
                                               (refused_rule("repo/env.rules"),)),
    "rules in a subdirectory linked outside": Case(both(RULE, link("../../../outside/secret.rules", "repo/a/b/x.rules")),
                                                   CHECK, 2, (refused_rule("repo/a/b/x.rules"),)),
    "rules linked through an inside link to outside": Case(
        both(RULE, link("../outside/secret.rules", "repo/hop.txt"), link("hop.txt", "repo/x.rules")), CHECK, 2,
        (refused_rule("repo/x.rules"),)),
    "two rule files linked in a loop": Case(both(RULE, link("b.rules", "repo/a.rules"), link("a.rules", "repo/b.rules")),
                                            CHECK, 2, (f"repo/a.rules: error: {LOOP}", f"repo/b.rules: error: {LOOP}")),
    "a rule file linked to itself": Case(both(RULE, link("self.rules", "repo/self.rules")), CHECK, 2,
                                         (f"repo/self.rules: error: {LOOP}",)),
    "a three-link loop": Case(both(RULE, link("b.rules", "repo/a.rules"), link("c.txt", "repo/b.rules"),
                                   link("a.rules", "repo/c.txt")), CHECK, 2,
                              (f"repo/a.rules: error: {LOOP}", f"repo/b.rules: error: {LOOP}")),
    "a manifest linked outside": Case(both(RULE, link("../outside/policy.yaml", "repo/policy.yaml")), CHECK, 2,
                                      (refused_rule("repo/policy.yaml"),)),
    "a .yml manifest linked to /etc/hostname": Case(both(RULE, link("/etc/hostname", "repo/host.yml")), CHECK, 2,
                                                    (refused_rule("repo/host.yml"),)),
    "two manifests linked in a loop": Case(both(RULE, link("b.yaml", "repo/a.yaml"), link("a.yaml", "repo/b.yaml")),
                                           CHECK, 2, (f"repo/a.yaml: error: {LOOP}", f"repo/b.yaml: error: {LOOP}")),
    "a manifest in a cluster linked outside": Case(
        both(cluster("./apps"), files(**{"repo/apps/cm.yaml": CONFIGMAP.format(name="a", value="b")}),
             link("../../outside/cm.yaml", "repo/apps/leak.yaml")), CHECK, 2, (refused_rule("repo/apps/leak.yaml"),)),
    "a directory linked outside is not entered": Case(both(RULE, link("../outside", "repo/ext")), CHECK, 0,
                                                      ("✔ 2 objects from 1 files: 0 errors, 0 warnings",)),
    "a .sourceignore linked to /etc/passwd is not read": Case(both(RULE, link("/etc/passwd", "repo/.sourceignore")),
                                                              CHECK, 0, ("✔ 2 objects from 1 files: 0 errors, 0 warnings",)),
    "a refused link the source ignores": Case(both(RULE, files(**{"repo/.sourceignore": "x.rules\n"}),
                                                   link("/etc/passwd", "repo/x.rules")), CHECK, 0,
                                              ("✔ 2 objects from 1 files: 0 errors, 0 warnings",)),
    "a named pipe posing as rules is passed over": Case(both(RULE, lambda b: os.mkfifo(b / "repo/fifo.rules")), CHECK, 0,
                                                        ("✔ 2 objects from 1 files: 0 errors, 0 warnings",)),
    "a dangling rule file is a warning": Case(both(RULE, link("gone/x.rules", "repo/x.rules")), CHECK, 0,
                                              (f"repo/x.rules: warning: {DANGLING}",
                                               "✔ 2 objects from 1 files: 0 errors, 1 warning")),
    "a dangling manifest is a warning": Case(both(RULE, link("missing.yaml", "repo/app.yaml")), CHECK, 0,
                                             (f"repo/app.yaml: warning: {DANGLING}",)),
    "a dangling link the source ignores is silent": Case(
        both(RULE, files(**{"repo/.sourceignore": "app.yaml\n"}), link("missing.yaml", "repo/app.yaml")), CHECK, 0,
        ("✔ 2 objects from 1 files: 0 errors, 0 warnings",)),
    "a link to a file inside is followed": Case(both(files(**{"repo/real/x.txt": RULES.format(name="inside")}),
                                                     link("real/x.txt", "repo/x.rules")), CHECK, 0,
                                                ("✔ 2 objects from 1 files: 0 errors, 0 warnings",)),
    # -- a Kustomization's spec.path -------------------------------------------------------------
    "spec.path ../..": Case(cluster("../.."), CHECK, 2, (ks("'../..' leaves the repository"),)),
    "spec.path ../outside": Case(cluster("../outside"), CHECK, 2, (ks("'../outside' leaves the repository"),)),
    "spec.path climbing out after a step in": Case(cluster("./clusters/../../../etc"), CHECK, 2,
                                                   (ks("'./clusters/../../../etc' leaves the repository"),)),
    "spec.path linked to a directory beside the repo": Case(both(cluster("./linked"), link("../outside", "repo/linked")),
                                                            CHECK, 2, (ks(f"'./linked' {REFUSED}"),)),
    "spec.path linked to /etc": Case(both(cluster("./linked"), link("/etc", "repo/linked")), CHECK, 2,
                                     (ks(f"'./linked' {REFUSED}"),)),
    "spec.path below a link outside": Case(both(cluster("./linked/base"), link("../outside", "repo/linked")), CHECK, 2,
                                           (ks(f"'./linked/base' {REFUSED}"),)),
    "spec.path a link loop": Case(both(cluster("./loop"), link("loop", "repo/loop")), CHECK, 2,
                                  (ks(f"'./loop' {LOOP}"),)),
    "spec.path absolute": Case(cluster("/etc"), CHECK, 2,
                               (ks("'/etc' is not a directory of the repository"),)),
    "build: spec.path ../..": Case(cluster("../.."), BUILD, 2, (ks("'../..' leaves the repository"),)),
    "build: spec.path linked outside": Case(both(cluster("./linked"), link("../outside", "repo/linked")), BUILD, 2,
                                            (ks(f"'./linked' {REFUSED}"),)),
    # -- kustomizations that read outside (gitward's kustomize subset, in check) -----------------
    "resources beyond the root": Case(app("resources:\n- ../../outside/cm.yaml\n"), CHECK, 2,
                                      (kust(2, "resources: '../../outside/cm.yaml' is outside the repository"),)),
    "resources absolute": Case(app("resources:\n- /etc/passwd\n"), CHECK, 2,
                               (kust(2, "resources: '/etc/passwd' is an absolute path: the repository is all a build may read"),)),
    "resources a link outside": Case(both(app("resources:\n- leak.yaml\n"), link("../../outside/cm.yaml", "repo/apps/leak.yaml")),
                                     CHECK, 2, (kust(2, f"resources: 'leak.yaml' {REFUSED}"),)),
    "resources a directory linked outside": Case(both(app("resources:\n- base\n"), link("../../outside/base", "repo/apps/base")),
                                                 CHECK, 2, (kust(2, f"resources: 'base' {REFUSED}"),)),
    "patches path beyond the root": Case(app("resources:\n- cm.yaml\npatches:\n- path: ../../outside/patch.yaml\n"), CHECK, 2,
                                         (kust(4, "patches: failed to get the patch file from path '../../outside/patch.yaml': "
                                                  "'../../outside/patch.yaml' is outside the repository"),)),
    "patchesStrategicMerge beyond the root": Case(app("resources:\n- cm.yaml\npatchesStrategicMerge:\n- ../../outside/patch.yaml\n"),
                                                  CHECK, 2, (kust(4, "patchesStrategicMerge: '../../outside/patch.yaml' is outside the repository"),)),
    "configMapGenerator file beyond the root": Case(app("configMapGenerator:\n- name: x\n  files:\n  - ../../outside/secret.txt\n"),
                                                    CHECK, 2, (kust(2, "configMapGenerator: x: '../../outside/secret.txt' is outside the repository"),)),
    "configMapGenerator key=/etc/passwd": Case(app("configMapGenerator:\n- name: x\n  files:\n  - k=/etc/passwd\n"), CHECK, 2,
                                               (kust(2, "configMapGenerator: x: '/etc/passwd' is an absolute path: the repository is all a build may read"),)),
    "configMapGenerator file a link outside": Case(both(app("configMapGenerator:\n- name: x\n  files:\n  - s.txt\n"),
                                                        link("../../outside/secret.txt", "repo/apps/s.txt")), CHECK, 2,
                                                   (kust(2, f"configMapGenerator: x: 's.txt' {REFUSED}"),)),
    "secretGenerator envs beyond the root": Case(app("secretGenerator:\n- name: x\n  envs:\n  - ../../outside/secret.env\n"),
                                                 CHECK, 2, (kust(2, "secretGenerator: x: '../../outside/secret.env' is outside the repository"),)),
    "components beyond the root": Case(app("resources:\n- cm.yaml\ncomponents:\n- ../../outside/comp\n"), CHECK, 2,
                                       (kust(4, "components: '../../outside/comp' is outside the repository"),)),
    "configurations absolute": Case(app("resources:\n- cm.yaml\nconfigurations:\n- /etc/passwd\n"), CHECK, 2,
                                    (kust(4, "configurations: '/etc/passwd' is an absolute path: the repository is all a build may read"),)),
    "a base that reaches beyond the root": Case(
        app("resources:\n- ../base\n", **{"../base/kustomization.yaml": "resources:\n- ../../outside/cm.yaml\n"}), CHECK, 2,
        ("repo/base/kustomization.yaml:2:3: error: resources: '../../outside/cm.yaml' is outside the repository",)),
    # -- the same through the real kustomize (gitward build) -------------------------------------
    "real kustomize: resources beyond the root": Case(app("resources:\n- ../../outside/cm.yaml\n"), BUILD, 2,
                                                      (kust(2, "resources: '../../outside/cm.yaml' is outside the repository"),), True),
    "real kustomize: resources a link outside": Case(both(app("resources:\n- leak.yaml\n"), link("../../outside/cm.yaml", "repo/apps/leak.yaml")),
                                                     BUILD, 2, (kust(2, f"resources: 'leak.yaml' {REFUSED}"),), True),
    "real kustomize: patches absolute": Case(app("resources:\n- cm.yaml\npatches:\n- path: /etc/hostname\n"), BUILD, 2,
                                             (kust(4, "patches: '/etc/hostname' is an absolute path: the repository is all a build may read"),), True),
    "real kustomize: patchesJson6902 beyond the root": Case(
        app("resources:\n- cm.yaml\npatchesJson6902:\n- target:\n    version: v1\n    kind: ConfigMap\n    name: app\n"
            "  path: ../../outside/patch.yaml\n"), BUILD, 2,
        (kust(4, "patchesJson6902: '../../outside/patch.yaml' is outside the repository"),), True),
    "real kustomize: configMapGenerator key=/etc/passwd": Case(app("configMapGenerator:\n- name: x\n  files:\n  - k=/etc/passwd\n"), BUILD, 2,
                                                               (kust(2, "configMapGenerator: '/etc/passwd' is an absolute path: the repository is all a build may read"),), True),
    "real kustomize: secretGenerator env beyond the root": Case(app("secretGenerator:\n- name: x\n  env: ../../outside/secret.env\n"),
                                                                BUILD, 2, (kust(2, "secretGenerator: '../../outside/secret.env' is outside the repository"),), True),
    "real kustomize: a base that reaches beyond the root": Case(
        app("resources:\n- ../base\n", **{"../base/kustomization.yaml": "resources:\n- ../../outside/cm.yaml\n"}), BUILD, 2,
        ("repo/base/kustomization.yaml:2:3: error: resources: '../../outside/cm.yaml' is outside the repository",), True),
    "real kustomize: components a link outside": Case(
        both(app("resources:\n- cm.yaml\ncomponents:\n- comp\n"), link("../../outside/comp", "repo/apps/comp")), BUILD, 2,
        (kust(4, f"components: 'comp' {REFUSED}"),), True),
}


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_repository(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:
    case = CASES[name]
    if case.needs_kustomize:
        require(bool(shutil.which("kustomize") or shutil.which("kubectl")), "neither kustomize nor kubectl is on PATH")
    outside(tmp_path)
    (tmp_path / "repo").mkdir()
    case.build(tmp_path)
    monkeypatch.chdir(tmp_path)
    code = main(list(case.args))
    out, err = capsys.readouterr()
    printed = out + err
    assert "internal error" not in printed and "Traceback" not in printed, printed
    assert SECRET not in printed and "root:x:0:0" not in printed, printed
    assert code == case.code, printed
    lines = printed.splitlines()
    for expected in case.lines:
        assert expected in lines, printed


def test_the_corpus_holds_forty_repositories() -> None:
    assert len(CASES) >= 40
