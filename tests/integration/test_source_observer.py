"""The git source observer on real remotes (file:// and ssh://), and a local checkout as a source.

Every remote is a real bare repository; refs are made by pushing from a work clone, as a user
would. Nothing is mocked: timeouts come from an ssh command that never answers, denials from
a key the test sshd does not know.
"""

from __future__ import annotations

import shutil
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import pytest
from sqlalchemy import text

from engine.cli.sources import reconcile_source_command
from engine.model import GitRef, GitSource
from engine.observe.git import SourceError, Wanted, fetch_source, local_revision, wanted
from engine.reconcile.sources import FETCH_FAILED, NEW_REVISION, reconcile_source
from engine.store import queries
from engine.store.db import Store, open_store, state_url
from tests.conftest import EXAMPLES
from tests.integration.git_env import (
    IDENTITY,
    BareRepo,
    SshRepo,
    SshServer,
    WorkClone,
    clone,
    free_port,
    git,
    keygen,
    make_bare_repo,
    ssh_command,
)

PODINFO = "cluster/apps/podinfo/deployment.yaml"
NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
SECRET_TOKEN = "ghp_FAKEtoken0123456789abcdefSECRET"
SECRET_PASSWORD = "hunter2-url-password"


def source(url: str, *, timeout: timedelta = timedelta(seconds=60), recurse: bool = False,
           **ref: str) -> GitSource:
    return GitSource("homelab", url, ref=GitRef(**ref), timeout=timeout, recurse_submodules=recurse)


@pytest.fixture
def work(bare_repo: BareRepo, tmp_path: Path) -> WorkClone:
    """A clone of `bare_repo` to commit, tag and push from."""
    return clone(bare_repo.url, tmp_path / "work")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(state_url(str(tmp_path / "state.db"))) as opened:
        yield opened


def tag(work: WorkClone, name: str, *, annotated: bool = False) -> None:
    args = ["-a", "-m", f"release {name}"] if annotated else []
    work.git(*IDENTITY, "tag", *args, name)
    work.git("push", "--quiet", "origin", f"refs/tags/{name}")


def commit_at(work: WorkClone, files: dict[str, str], message: str, when: str) -> str:
    for name, body in files.items():
        (work.path / name).write_text(body)
    work.git("add", "--all")
    git(*IDENTITY, "commit", "--quiet", "-m", message, cwd=work.path,
        extra_env={"GIT_COMMITTER_DATE": when, "GIT_AUTHOR_DATE": when})
    return work.rev()


def shas(store: Store, name: str = "flux-system/homelab") -> list[str]:
    with store.engine.connect() as connection:
        query = text("SELECT sha FROM git_revisions WHERE source = :s ORDER BY id")
        return list(connection.execute(query, {"s": name}).scalars())


# Ref precedence (pure) -----------------------------------------------------------------------


@pytest.mark.parametrize(("ref", "expected"), [
    (GitRef(), Wanted("branch", "master")),
    (GitRef(branch="main"), Wanted("branch", "main")),
    (GitRef(branch="main", tag="v1"), Wanted("tag", "v1")),
    (GitRef(branch="main", tag="v1", semver="^1"), Wanted("semver", "^1")),
    (GitRef(tag="v1", semver="^1", name="refs/pull/1/head"), Wanted("name", "refs/pull/1/head")),
    (GitRef(branch="dev", name="refs/x", commit="ABC1234"), Wanted("commit", "abc1234", "dev")),
])
def test_the_most_specific_ref_field_wins(ref: GitRef, expected: Wanted) -> None:
    assert wanted(ref) == expected


# Fetching refs over file:// --------------------------------------------------------------------


def test_a_branch_is_fetched_shallow_and_checked_out(bare_repo: BareRepo, work: WorkClone,
                                                     tmp_path: Path) -> None:
    head = work.commit({"README.md": "second\n"}, "Second commit\n\nWith a body.")
    work.push()
    checkout = fetch_source(source(bare_repo.url, branch="main"), cache_dir=tmp_path / "cache")
    assert checkout.revision == f"main@sha1:{head}"
    assert (checkout.sha, checkout.branch, checkout.source) == (head, "main", "flux-system/homelab")
    assert (checkout.path / "README.md").read_text() == "second\n"
    assert (checkout.path / PODINFO).is_file()
    assert checkout.author == "gitward tests <tests@gitward.invalid>"
    assert checkout.message == "Second commit\n\nWith a body." and checkout.subject == "Second commit"
    assert checkout.committed_at.tzinfo is not None
    shallow = git("rev-parse", "--is-shallow-repository", cwd=checkout.path).stdout.strip()
    assert shallow == "true"


def test_another_branch_and_stale_files_are_replaced(bare_repo: BareRepo, work: WorkClone,
                                                     tmp_path: Path) -> None:
    work.git("checkout", "--quiet", "-b", "dev")
    dev = work.commit({"DEV.md": "dev only\n"}, "Dev work")
    work.push("dev")
    cache = tmp_path / "cache"
    main = fetch_source(source(bare_repo.url, branch="main"), cache_dir=cache)
    (main.path / "junk.yaml").write_text("kind: Junk\n")
    checkout = fetch_source(source(bare_repo.url, branch="dev"), cache_dir=cache)
    assert checkout.path == main.path
    assert checkout.revision == f"dev@sha1:{dev}"
    assert (checkout.path / "DEV.md").is_file() and not (checkout.path / "junk.yaml").exists()
    again = fetch_source(source(bare_repo.url, branch="main"), cache_dir=cache)
    assert again.sha == bare_repo.rev("main") and not (again.path / "DEV.md").exists()


def test_a_tag_resolves_to_its_commit_lightweight_or_annotated(bare_repo: BareRepo, work: WorkClone,
                                                               tmp_path: Path) -> None:
    first = work.rev()
    tag(work, "v1.0.0")
    second = work.commit({"README.md": "v2\n"}, "Release 2")
    work.push()
    tag(work, "v2.0.0", annotated=True)
    cache = tmp_path / "cache"
    light = fetch_source(source(bare_repo.url, tag="v1.0.0"), cache_dir=cache)
    assert (light.revision, light.branch) == (f"v1.0.0@sha1:{first}", "v1.0.0")
    annotated = fetch_source(source(bare_repo.url, branch="main", tag="v2.0.0"), cache_dir=cache)
    tag_object = work.git("rev-parse", "refs/tags/v2.0.0").stdout.strip()
    assert annotated.revision == f"v2.0.0@sha1:{second}" and tag_object != second
    assert (annotated.path / "README.md").read_text() == "v2\n"


def test_semver_picks_the_highest_tag_in_range(bare_repo: BareRepo, work: WorkClone,
                                              tmp_path: Path) -> None:
    tag(work, "v1.0.0")
    in_range = work.commit({"README.md": "1.2\n"}, "Release 1.2")
    work.push()
    tag(work, "v1.2.0", annotated=True)
    tag(work, "1.1.9")
    work.commit({"README.md": "later\n"}, "Later")
    work.push()
    for name in ("v1.3.0-rc.1", "v2.0.0", "v1.9", "latest"):
        tag(work, name)
    cache = tmp_path / "cache"
    checkout = fetch_source(source(bare_repo.url, semver=">=1.0.0 <2.0.0"), cache_dir=cache)
    assert checkout.revision == f"v1.2.0@sha1:{in_range}"
    assert (checkout.path / "README.md").read_text() == "1.2\n"
    pre = fetch_source(source(bare_repo.url, semver=">=1.3.0-rc.0 <2.0.0"), cache_dir=cache)
    assert pre.branch == "v1.3.0-rc.1"
    with pytest.raises(SourceError) as none:
        fetch_source(source(bare_repo.url, semver=">=3.0.0"), cache_dir=cache)
    assert none.value.permanent
    assert str(none.value) == (f"no tag in {bare_repo.url} matches semver '>=3.0.0'; tags: "
                               "1.1.9, latest, v1.0.0, v1.2.0, v1.3.0-rc.1, v1.9, v2.0.0")
    with pytest.raises(SourceError, match="invalid semver range '>=1.0.0 <<2'") as bad:
        fetch_source(source(bare_repo.url, semver=">=1.0.0 <<2"), cache_dir=cache)
    assert bad.value.permanent


def test_semver_between_equal_versions_takes_the_latest_commit(bare_repo: BareRepo, work: WorkClone,
                                                              tmp_path: Path) -> None:
    older = commit_at(work, {"README.md": "old\n"}, "Old build", "2024-01-01T00:00:00Z")
    tag(work, "v1.0.0+zzz")
    newer = commit_at(work, {"README.md": "new\n"}, "New build", "2024-06-01T00:00:00Z")
    work.push()
    tag(work, "v1.0.0+aaa")
    checkout = fetch_source(source(bare_repo.url, semver="1.x"), cache_dir=tmp_path / "cache")
    assert checkout.revision == f"v1.0.0+aaa@sha1:{newer}" and older != newer


def test_a_commit_on_its_branch(bare_repo: BareRepo, work: WorkClone, tmp_path: Path) -> None:
    old = work.rev()
    for n in range(3):
        work.commit({"README.md": f"change {n}\n"}, f"Change {n}")
    work.push()
    cache = tmp_path / "cache"
    fetch_source(source(bare_repo.url, branch="main"), cache_dir=cache)  # leaves a shallow cache
    checkout = fetch_source(source(bare_repo.url, branch="main", commit=old[:10]), cache_dir=cache)
    assert checkout.revision == f"main@sha1:{old}" and checkout.branch == "main"
    assert (checkout.path / "README.md").read_text() == (EXAMPLES / "homelab/README.md").read_text()
    work.git("checkout", "--quiet", "-b", "dev")
    dev_only = work.commit({"DEV.md": "x\n"}, "Dev only")
    work.push("dev")
    with pytest.raises(SourceError) as err:
        fetch_source(source(bare_repo.url, branch="main", commit=dev_only), cache_dir=cache)
    assert str(err.value) == f"commit '{dev_only}' not found in branch 'main' of {bare_repo.url}"
    assert err.value.permanent


def test_a_bare_commit_is_found_on_any_branch(bare_repo: BareRepo, work: WorkClone,
                                              tmp_path: Path) -> None:
    work.git("checkout", "--quiet", "-b", "dev")
    dev_only = work.commit({"DEV.md": "x\n"}, "Dev only")
    work.push("dev")
    cache = tmp_path / "cache"
    checkout = fetch_source(source(bare_repo.url, commit=dev_only), cache_dir=cache)
    assert (checkout.revision, checkout.branch) == (f"sha1:{dev_only}", "")
    assert (checkout.path / "DEV.md").is_file()
    missing = "0" * 40
    with pytest.raises(SourceError, match=f"commit '{missing}' not found in any branch"):
        fetch_source(source(bare_repo.url, commit=missing), cache_dir=cache)
    with pytest.raises(SourceError, match="'main' is not a commit hash"):
        fetch_source(source(bare_repo.url, commit="main"), cache_dir=cache)


def test_a_full_ref_name(bare_repo: BareRepo, work: WorkClone, tmp_path: Path) -> None:
    work.git("checkout", "--quiet", "-b", "feature")
    head = work.commit({"FEATURE.md": "pr\n"}, "Pull request")
    work.git("push", "--quiet", "origin", "HEAD:refs/pull/1/head")
    cache = tmp_path / "cache"
    checkout = fetch_source(source(bare_repo.url, branch="main", name="refs/pull/1/head"),
                            cache_dir=cache)
    assert checkout.revision == f"refs/pull/1/head@sha1:{head}"
    assert (checkout.path / "FEATURE.md").is_file()
    with pytest.raises(SourceError) as err:
        fetch_source(source(bare_repo.url, name="refs/pull/2/head"), cache_dir=cache)
    assert str(err.value) == f"name 'refs/pull/2/head' not found in {bare_repo.url}"
    with pytest.raises(SourceError, match="must be a full reference"):
        fetch_source(source(bare_repo.url, name="main"), cache_dir=cache)


def test_an_unknown_branch_names_the_branches_there(bare_repo: BareRepo, work: WorkClone,
                                                    tmp_path: Path) -> None:
    work.git("push", "--quiet", "origin", "main:dev")
    with pytest.raises(SourceError) as err:
        fetch_source(source(bare_repo.url, branch="mian"), cache_dir=tmp_path / "cache")
    assert str(err.value) == f"branch 'mian' not found in {bare_repo.url}; branches: dev, main"
    assert err.value.permanent
    with pytest.raises(SourceError, match=r"tag 'v9' not found in .*; tags: none"):
        fetch_source(source(bare_repo.url, tag="v9"), cache_dir=tmp_path / "cache")


def test_a_missing_repository_is_a_permanent_error(tmp_path: Path) -> None:
    url = (tmp_path / "nowhere.git").as_uri()
    with pytest.raises(SourceError) as err:
        fetch_source(source(url, branch="main"), cache_dir=tmp_path / "cache")
    assert str(err.value).startswith(f"no git repository at {url} (") and err.value.permanent


# The store: one row per commit, events on change and failure ------------------------------------


def test_a_refetch_without_news_records_nothing_and_a_new_commit_is_seen(
        bare_repo: BareRepo, work: WorkClone, store: Store, tmp_path: Path) -> None:
    spec = source(bare_repo.url, branch="main")
    cache = tmp_path / "cache"
    first = reconcile_source(store, spec, cache_dir=cache, clock=lambda: NOW)
    assert first.changed and first.revision is not None and first.checkout is not None
    assert (first.revision.sha, first.revision.branch) == (bare_repo.rev(), "main")
    assert (first.revision.url, first.revision.message) == (bare_repo.url, "Initial commit")
    again = reconcile_source(store, spec, cache_dir=cache, clock=lambda: NOW + timedelta(minutes=1))
    assert not again.changed and again.revision == first.revision
    assert shas(store) == [bare_repo.rev()]
    head = work.commit({"README.md": "news\n"}, "News")
    work.push()
    later = reconcile_source(store, spec, cache_dir=cache, clock=lambda: NOW + timedelta(minutes=2))
    assert later.changed and later.checkout is not None
    assert later.checkout.revision == f"main@sha1:{head}"
    assert shas(store) == [first.revision.sha, head]
    events = queries.list_events(store, object_name="flux-system/homelab")
    assert [(e.reason, e.severity) for e in events] == [(NEW_REVISION, queries.EventSeverity.INFO)] * 2
    assert events[-1].message == f"fetched revision main@sha1:{head}: 'News'"


def test_a_failure_is_an_event_and_no_revision(bare_repo: BareRepo, store: Store, tmp_path: Path) -> None:
    outcome = reconcile_source(store, source(bare_repo.url, branch="mian"),
                               cache_dir=tmp_path / "cache", clock=lambda: NOW)
    assert outcome.checkout is None and outcome.error is not None and outcome.error.permanent
    [event] = queries.list_events(store, object_name="flux-system/homelab")
    assert (event.reason, event.severity, event.time) == (FETCH_FAILED, queries.EventSeverity.ERROR, NOW)
    assert event.message == f"branch 'mian' not found in {bare_repo.url}; branches: main"
    assert shas(store) == []


def test_credentials_never_reach_messages_or_the_store(store: Store, tmp_path: Path) -> None:
    url = f"https://bot:{SECRET_PASSWORD}@127.0.0.1:{free_port()}/example/homelab.git"
    spec = source(url, branch="main", timeout=timedelta(seconds=20))
    outcome = reconcile_source(store, spec, cache_dir=tmp_path / "cache", token=SECRET_TOKEN,
                               clock=lambda: NOW)
    assert outcome.error is not None and not outcome.error.permanent
    message = str(outcome.error)
    assert "https://127.0.0.1:" in message
    with store.engine.connect() as connection:
        stored = " ".join(connection.execute(text("SELECT message FROM events")).scalars())
    for secret in (SECRET_PASSWORD, SECRET_TOKEN, "bot:"):
        assert secret not in message and secret not in stored
    config = (next((tmp_path / "cache").rglob(".git")) / "config").read_text()
    assert SECRET_PASSWORD not in config and SECRET_TOKEN not in config


def test_a_remote_that_never_answers_times_out(tmp_path: Path) -> None:
    hang = tmp_path / "hang-ssh"
    hang.write_text("#!/bin/sh\nexec sleep 600\n")
    hang.chmod(hang.stat().st_mode | stat.S_IXUSR)
    spec = source("ssh://git@gitward.invalid/homelab.git", branch="main",
                  timeout=timedelta(seconds=1))
    with pytest.raises(SourceError) as err:
        fetch_source(spec, cache_dir=tmp_path / "cache", ssh_command=str(hang))
    assert str(err.value) == ("fetching branch 'main' from ssh://git@gitward.invalid/homelab.git "
                              "timed out after 1s")
    assert not err.value.permanent


# ssh:// ---------------------------------------------------------------------------------------


def test_ssh_with_the_read_only_deploy_key(ssh_repo: SshRepo, tmp_path: Path) -> None:
    checkout = fetch_source(source(ssh_repo.url, branch="main"), cache_dir=tmp_path / "cache",
                            ssh_command=ssh_repo.ro_ssh_command)
    assert checkout.revision == f"main@sha1:{ssh_repo.repo.rev()}"
    assert (checkout.path / PODINFO).is_file()


def test_ssh_with_an_unknown_key_is_denied(ssh_repo: SshRepo, sshd: SshServer, tmp_path: Path) -> None:
    stranger = keygen(tmp_path / "stranger", "not-authorized")
    command = ssh_command(stranger, sshd.known_hosts)
    with pytest.raises(SourceError) as err:
        fetch_source(source(ssh_repo.url, branch="main"), cache_dir=tmp_path / "cache",
                     ssh_command=command)
    message = str(err.value)
    assert message.startswith(f"cannot read {ssh_repo.url}: access denied (") and err.value.permanent
    assert str(stranger) not in message and command not in message


def test_submodules_are_checked_out_when_asked(ssh_repo: SshRepo, sshd: SshServer,
                                               tmp_path: Path) -> None:
    library = make_bare_repo(tmp_path / "lib.git", EXAMPLES / "homelab" / "cluster" / "infrastructure")
    library_url = sshd.serve(library.path)
    work = clone(ssh_repo.url, tmp_path / "work", ssh_command=ssh_repo.rw_ssh_command)
    work.git("submodule", "--quiet", "add", library_url, "vendor/lib")
    work.git(*IDENTITY, "commit", "--quiet", "-m", "Add a submodule")
    work.push()
    cache = tmp_path / "cache"
    plain = fetch_source(source(ssh_repo.url, branch="main"), cache_dir=cache,
                         ssh_command=ssh_repo.ro_ssh_command)
    assert not any((plain.path / "vendor/lib").iterdir())
    checkout = fetch_source(source(ssh_repo.url, branch="main", recurse=True), cache_dir=cache,
                            ssh_command=ssh_repo.ro_ssh_command)
    expected = sorted(p.name for p in (EXAMPLES / "homelab/cluster/infrastructure").iterdir())
    assert sorted(p.name for p in (checkout.path / "vendor/lib").iterdir() if p.name != ".git") == expected


# A local checkout -------------------------------------------------------------------------------


def test_a_local_checkout_is_clean_or_dirty(work: WorkClone, tmp_path: Path) -> None:
    head = work.rev()
    clean = local_revision(work.path / "cluster", source="flux-system/homelab")
    assert (clean.revision, clean.sha, clean.branch, clean.path) == (head, head, "main", work.path)
    assert clean.message == "Initial commit"
    podinfo = work.path / PODINFO
    original = podinfo.read_text()
    podinfo.write_text(original + "# edited\n")
    assert local_revision(work.path).revision == f"{head}+dirty"
    podinfo.write_text(original)
    assert local_revision(work.path).revision == head
    (work.path / "cluster/apps/new.yaml").write_text("kind: ConfigMap\n")
    assert local_revision(work.path).revision == f"{head}+dirty"
    (work.path / "cluster/apps/new.yaml").unlink()
    podinfo.unlink()
    assert local_revision(work.path).revision == f"{head}+dirty"
    podinfo.write_text(original)


def test_files_the_source_leaves_out_do_not_make_it_dirty(work: WorkClone) -> None:
    (work.path / ".gitignore").write_text("*.log\n")
    work.commit({}, "Ignore rules")
    head = work.rev()
    (work.path / "debug.log").write_text("noise\n")  # .gitignore
    (work.path / "diagram.png").write_bytes(b"\x89PNG")  # Flux's default exclusions
    (work.path / ".github/workflows").mkdir(parents=True)
    (work.path / ".github/workflows/ci.yml").write_text("on: push\n")
    assert local_revision(work.path).revision == head
    (work.path / "notes.txt").write_text("spec.ignore\n")
    assert local_revision(work.path).revision == f"{head}+dirty"  # notes.txt counts


def test_sourceignore_and_spec_ignore_replace_the_default_exclusions(work: WorkClone) -> None:
    # source-controller: once any .sourceignore or spec.ignore pattern exists, its default
    # exclusions (images, CI files...) no longer apply; only the .git ones do
    (work.path / "cluster/.sourceignore").write_text("drafts/\n")
    work.commit({}, "Ignore drafts")
    head = work.rev()
    (work.path / "cluster/drafts").mkdir()
    (work.path / "cluster/drafts/wip.yaml").write_text("kind: Draft\n")  # nested .sourceignore
    (work.path / "notes.txt").write_text("spec.ignore\n")
    assert local_revision(work.path, ignore="/notes.txt").revision == head
    assert local_revision(work.path).revision == f"{head}+dirty"  # notes.txt counts without it
    (work.path / "diagram.png").write_bytes(b"\x89PNG")
    assert local_revision(work.path, ignore="/notes.txt").revision == f"{head}+dirty"


def test_a_directory_outside_git_is_not_a_source(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(SourceError, match="is not inside a git checkout"):
        local_revision(plain)
    git("init", "--quiet", str(tmp_path / "empty"))
    with pytest.raises(SourceError, match="has no commit yet"):
        local_revision(tmp_path / "empty")


# The CLI ----------------------------------------------------------------------------------------


@pytest.fixture
def homelab(tmp_path: Path) -> tuple[BareRepo, Path]:
    """A bare repo of examples/homelab whose GitRepository points at the bare repo itself."""
    seed = tmp_path / "seed"
    shutil.copytree(EXAMPLES / "homelab", seed)
    bare_path = tmp_path / "homelab.git"
    sync = seed / "cluster/system/flux-system/gotk-sync.yaml"
    sync.write_text(sync.read_text().replace("ssh://git@github.com/example/homelab",
                                             bare_path.as_uri()))
    return make_bare_repo(bare_path, seed), seed


def test_the_command_prints_the_revision_and_fails_with_a_clear_message(
        homelab: tuple[BareRepo, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bare, repo = homelab
    ctx = click.Context(click.Command("gitward"), obj={"state": str(tmp_path / "state.db")})
    code = reconcile_source_command(ctx, ("flux-system",), repo=repo, namespace="flux-system",
                                    ssh_key=None, workdir=tmp_path / "cache")
    out = capsys.readouterr()
    assert code == 0, out.err
    assert out.out.splitlines()[-1] == f"✔ fetched revision main@sha1:{bare.rev()}"
    sync = repo / "cluster/system/flux-system/gotk-sync.yaml"
    sync.write_text(sync.read_text().replace("branch: main", "branch: mian"))
    code = reconcile_source_command(ctx, ("flux-system",), repo=repo, namespace="flux-system",
                                    ssh_key=None, workdir=tmp_path / "cache")
    out = capsys.readouterr()
    assert code == 1
    assert out.err.strip() == f"✗ branch 'mian' not found in {bare.url}; branches: main"


def test_the_command_refuses_a_suspended_source(homelab: tuple[BareRepo, Path], tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    _, repo = homelab
    state = str(tmp_path / "state.db")
    with open_store(state_url(state)) as opened:
        queries.suspend(opened, GitSource.KIND, "flux-system/flux-system")
    ctx = click.Context(click.Command("gitward"), obj={"state": state})
    code = reconcile_source_command(ctx, ("flux-system",), repo=repo, namespace="flux-system",
                                    ssh_key=None, workdir=tmp_path / "cache")
    assert code == 1
    assert capsys.readouterr().err.strip() == (
        "✗ GitRepository flux-system/flux-system is suspended: resume it first")
    assert not (tmp_path / "cache").exists()
