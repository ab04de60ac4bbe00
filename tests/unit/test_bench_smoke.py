"""The benchmarks run: each one, at its `--quick` size, completes and prints its ratio lines.

No timing is asserted (a benchmark is not a test; the numbers depend on the machine). What is
asserted is that every benchmark measured its subject against its baseline and said whether the
goal was met, and that the generated tags are what the policy benchmark's answers assume.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from bench import BenchError, Result, Timing, interleaved, ready, sync
from bench.discovery import REALWORLD
from bench.markers import NAMESPACE, POLICIES, SCREEN, prepared, write_tree
from bench.policy import make_tags
from bench.run import format_table, main
from engine.act.cluster import apply_object, delete_object
from engine.errors import Problems
from engine.evaluate.apply import Change, ObjectAction
from engine.model import Manifest, ObjectId
from engine.observe.cluster import dry_run_apply, read_object
from engine.reconcile.cluster import SyncResult
from engine.rules.load import load_repo
from tests.conftest import require, require_corpus

_LINE = re.compile(
    r"^(?P<name>.+?)\s{2,}(?P<size>[\d,]+)\s+(?P<runs>\d+)\s+(?P<seconds>\d+\.\d{4})\s+(?P<rate>[\d,]+) \w+/s\s+"
    r"(?P<baseline>\d+\.\d{4})\s+(?P<ratio>\d+\.\d{2})x\s+(?P<goal>.+?)\s{2,}(?P<verdict>met|missed)$"
)


def _ratio_lines(out: str) -> dict[str, re.Match[str]]:
    return {m["name"]: m for line in out.splitlines() if (m := _LINE.match(line))}


@pytest.mark.parametrize(
    "benchmark, names",
    [
        ("policy", ['policy semver ">=1.0.0 <50.0.0"', "policy filter+extract+numerical",
                    'policy semver ">=1.0.0 <50.0.0" rescan +100', "policy filter+extract+numerical rescan +100",
                    "images test (whole process)"]),
        ("store", ["store write of new tags", "store unchanged rescan"]),
        ("ledger", ["ledger unchanged interval time, 3x100", "ledger unchanged held interval time, 3x100",
                    "ledger read v_policy_latest",
                    "ledger read v_image_updates", "ledger read v_object_history",
                    "ledger read v_tag_lead_time", "ledger read explain", "ledger read images tags"]),
        ("scan", ["scan list_tags, pages of 100"]),
        ("ui", [f"ui page {name}" for name in ("overview", "image policy", "image policy, trace filtered",
                                                "image repository", "events", "lead time",
                                                "sql v_policy_latest")]),
        ("markers", ["markers images update, 40 marked", "markers plan+rewrite in-process, 40 marked"]),
        ("discovery", ["check tinyrack-net__homelab"]),
        ("startup", ["startup --help", "startup check homelab", "startup get all -A", "startup plan --offline",
                     "startup floor import sqlalchemy", "startup floor import sqlalchemy.orm",
                     "startup floor store read, Core"]),
    ],
)
def test_quick_run_prints_ratio_lines(
    benchmark: str, names: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    if benchmark == "scan":
        require(shutil.which("docker-registry") is not None, "docker-registry is not installed (apt-get install docker-registry)")
    if benchmark == "markers":
        require(shutil.which("grep") is not None, "grep is not installed: it is the marker benchmark's baseline")
    if benchmark == "discovery":
        require(shutil.which("kubectl") is not None, "kubectl is not installed: it is the discovery benchmark's baseline")
        require_corpus(REALWORLD.is_dir(), f"the realworld corpus is absent ({REALWORLD})")
    status = main(["--quick", "--runs", "1", "--only", benchmark])
    out, err = capsys.readouterr()
    assert status == 0, err
    lines = _ratio_lines(out)
    assert sorted(lines) == sorted(names), out
    for name in names:
        assert f"  {name}: " in out.split("baselines (same run, same data):", 1)[1]
        assert float(lines[name]["baseline"]) > 0


def test_fleet_quick_run_prints_its_pass_and_memory_lines(capsys: pytest.CaptureFixture[str]) -> None:
    require(shutil.which("docker-registry") is not None, "docker-registry is not installed (apt-get install docker-registry)")
    require(shutil.which("git") is not None, "git is not installed: the fleet's source is a bare repository")
    status = main(["--quick", "--runs", "1", "--only", "fleet"])
    out, err = capsys.readouterr()
    assert status == 0, err
    lines = _ratio_lines(out)
    assert sorted(lines) == ["fleet run --once, steady"], out
    assert float(lines["fleet run --once, steady"]["baseline"]) > 0
    memory = re.search(r"^fleet run --once peak RSS\s+[\d,]+\s+\d+\s+(?P<rss>[\d.]+) MiB\s+-\s+"
                       r"(?P<baseline>[\d.]+) MiB\s+[\d.]+x\s+<=2x\s+(met|missed)$", out, re.M)
    assert memory is not None, out
    assert float(memory["rss"]) > 0 and float(memory["baseline"]) > 0
    assert "  fleet run --once peak RSS: ru_maxrss of a fresh interpreter that imported the" in out


def test_unchanged_rescan_reports_rows_written(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--quick", "--runs", "1", "--only", "store"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"unchanged rescan of 500 tags wrote 1 row\(s\) \(SQLite total_changes\(\)\); image_tags rows changed: 0", out)
    assert "store unchanged rescan" in _ratio_lines(out)
    assert _ratio_lines(out)["store unchanged rescan"]["verdict"] == "met"


def test_ledger_reports_the_bytes_an_unchanged_interval_adds(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--quick", "--runs", "1", "--only", "ledger"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^ledger unchanged interval, 3x100 .* KiB .* <= 2 KiB/repository\s+met$", out,
                     flags=re.MULTILINE), out
    assert "bytes added per repository by each unchanged interval: 0, 0" in out
    assert re.search(r"^ledger year, 3x100, 10 days .* MB .*met$", out, flags=re.MULTILINE), out


def test_tags_are_deterministic_varied_and_valid() -> None:
    first, again = make_tags(3_000), make_tags(3_000)
    assert first == again
    assert len(set(first.tags)) == 3_000
    assert make_tags(3_000, seed=1).tags != first.tags
    tags = first.tags
    assert "latest" in tags
    assert any(re.fullmatch(r"[0-9]{8}-[0-9]{4}-sha-[a-f0-9]{7}", t) for t in tags)
    assert any(re.fullmatch(r"v[0-9]+\.[0-9]+\.[0-9]+", t) for t in tags)
    assert any(re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+-(rc|beta|alpha)\.[0-9]", t) for t in tags)
    assert any(re.fullmatch(r"sha-[a-f0-9]{7}", t) for t in tags)
    assert all(re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", t) for t in tags)  # registry tag grammar
    assert first.semver_winner.lstrip("v").split(".")[0] in {str(n) for n in range(1, 50)}
    assert first.timestamp_winner in tags


def test_too_few_tags_is_a_clear_error() -> None:
    with pytest.raises(BenchError, match="at least 10 tags"):
        make_tags(3)


def test_interleaved_takes_medians_and_skips_the_warm_up() -> None:
    calls: list[str] = []
    timing = interleaved(ready(lambda: calls.append("s")), ready(lambda: calls.append("b")), 3)
    assert timing.runs == 3
    assert calls == ["s", "b", "b", "s", "s", "b", "b", "s"]  # alternating order, one warm-up round
    with pytest.raises(BenchError, match="at least 1"):
        interleaved(ready(lambda: None), ready(lambda: None), 0)


def test_table_shows_ratio_goal_and_verdict() -> None:
    result = Result("demo", 1_000, "tags", Timing(0.5, 0.25, 5), "<=3x", True, "a loop")
    out = format_table([result])
    line = _ratio_lines(out)["demo"]
    assert (line["ratio"], line["goal"], line["verdict"]) == ("2.00", "<=3x", "met")
    assert line["rate"] == "2,000"
    assert "  demo: a loop" in out


def test_marker_tree_is_deterministic_and_marks_what_it_says(tmp_path: Path) -> None:
    tree = write_tree(tmp_path / "a", 200, 20)
    again = write_tree(tmp_path / "b", 200, 20)
    files = sorted(p.relative_to(tree.root).as_posix() for p in tree.root.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again.root).as_posix() for p in again.root.rglob("*") if p.is_file())
    assert all((tree.root / f).read_bytes() == (again.root / f).read_bytes() for f in files)
    manifests = [f for f in files if f.endswith(".yaml")]
    assert len(manifests) == 200 and all(f.startswith("cluster/apps/") for f in manifests)
    marked = {f for f in manifests if SCREEN in (tree.root / f).read_text()}
    assert marked == set(tree.expected) and len(marked) == 20
    assert any(len(list(yaml.safe_load_all((tree.root / f).read_text()))) > 1 for f in manifests)  # some multi-doc
    for rel, after in tree.expected.items():
        before = (tree.root / rel).read_text()
        changed = [(old, new) for old, new in zip(before.splitlines(), after.splitlines()) if old != new]
        assert len(changed) == 1 and SCREEN in changed[0][0] and f'"{NAMESPACE}:' in changed[0][0]
    problems = Problems()
    rules = load_repo(tree.root, problems).rules
    assert not problems.errors
    assert len(rules.image_policies) == len(POLICIES) and len(rules.image_updates) == 1


def test_marker_tree_refuses_impossible_sizes(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match="a quarter"):
        write_tree(tmp_path / "t", 100, 50)


def test_marker_checks_catch_a_wrong_answer(tmp_path: Path) -> None:
    require(shutil.which("grep") is not None, "grep is not installed: it is the marker benchmark's baseline")
    with prepared(40, 4, tmp_path) as bench:
        bench.reset()
        with pytest.raises(BenchError, match="does not hold the expected text"):
            bench.check_tree()  # nothing rewritten yet
        with pytest.raises(BenchError, match="wrote 0 files"):
            bench.check_in_process([])
        bench.check_in_process(bench.update_in_process())
        bench.check_grep(bench.grep())
        with pytest.raises(BenchError, match="listed 0 files"):
            bench.check_grep(subprocess.CompletedProcess(["grep"], 1, "", ""))
        (bench.work / "cluster" / "stray.yaml").write_text("kind: Stray\n")
        with pytest.raises(BenchError, match=r"not in the tree \(1\)"):
            bench.check_tree()


def test_sync_quick_run_prints_its_lines_and_zero_writes(capsys: pytest.CaptureFixture[str]) -> None:
    require(shutil.which(sync.KUBECTL) is not None, f"kubectl is not at {sync.KUBECTL}: it is the sync baseline")
    missing = sync.missing_binaries()
    require(not missing, f"the sync lines need a kube-apiserver: {missing}")
    status = main(["--quick", "--runs", "1", "--only", "sync"])
    out, err = capsys.readouterr()
    assert status == 0, err
    lines = _ratio_lines(out)
    names = ["sync render plain tree", "sync first apply", "sync no-op reconcile"]
    assert sorted(lines) == sorted(names), out
    objects = sync.QUICK_OBJECTS + sync.QUICK_NAMESPACES
    for name in names:
        assert f"  {name}: " in out.split("baselines (same run, same data):", 1)[1]
        assert float(lines[name]["baseline"]) > 0 and lines[name]["size"] == str(objects)
    assert "sync no-op reconcile: all 2 runs: 0 writes to the API server, 0 store rows changed" in out
    assert re.search(rf"per sync [\d,]+ requests \(.*; {objects} dry-run applies\)", out), out


def test_sync_tree_is_deterministic_and_renders_as_kubectl_does(tmp_path: Path) -> None:
    require(shutil.which(sync.KUBECTL) is not None, f"kubectl is not at {sync.KUBECTL}: it is the sync baseline")
    tree = sync.write_tree(tmp_path / "a", 4, 50)
    again = sync.write_tree(tmp_path / "b", 4, 50)
    files = sorted(p.relative_to(tree.root).as_posix() for p in tree.root.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again.root).as_posix() for p in again.root.rglob("*") if p.is_file())
    assert all((tree.root / f).read_bytes() == (again.root / f).read_bytes() for f in files)
    assert not any(f.endswith("kustomization.yaml") for f in files if f.startswith(f"{sync.TREE}/"))
    rendered = sync.render(tree)
    kinds = {m.kind for m in rendered}
    assert len(rendered) == 54 and kinds == {"Namespace", "ConfigMap", "Deployment", "Service"}
    assert {m.namespace for m in rendered if m.kind != "Namespace"} == set(tree.namespaces)
    output = sync.kustomize(tree)
    sync.check_kustomize(tree, output)
    sync.check_same_objects(rendered, output)
    with pytest.raises(BenchError, match="differs from kubectl kustomize"):
        sync.check_same_objects(rendered, output.replace("LOG_FORMAT: json", "LOG_FORMAT: text", 1))
    with pytest.raises(BenchError, match="render different objects"):
        sync.check_same_objects(rendered[1:], output)
    moved = sync.moved(rendered, "-g1")
    assert {m.namespace for m in moved if m.kind != "Namespace"} == {f"{n}-g1" for n in tree.namespaces}
    assert {m.name for m in moved if m.kind == "Namespace"} == {f"{n}-g1" for n in tree.namespaces}
    assert {m.namespace for m in rendered if m.kind != "Namespace"} == set(tree.namespaces)  # a copy


def test_sync_checks_catch_a_wrong_answer() -> None:
    def result(*changes: Change, error: str | None = None) -> SyncResult:
        applied = tuple(ObjectAction(ObjectId("", "ConfigMap", "team-00", f"c{i}"), "v1", c)
                        for i, c in enumerate(changes))
        return SyncResult("flux-system/bench", sync.REVISION, applied, error=error)

    sync.check_applied(result(Change.UNCHANGED, Change.UNCHANGED), 2, Change.UNCHANGED, "no-op")
    with pytest.raises(BenchError, match="leave all 2 objects unchanged; they were: 1 unchanged, 1 configured"):
        sync.check_applied(result(Change.UNCHANGED, Change.UPDATE), 2, Change.UNCHANGED, "no-op")
    with pytest.raises(BenchError, match="the first apply failed: refused"):
        sync.check_applied(result(error="refused"), 0, Change.CREATE, "first apply")
    done = subprocess.CompletedProcess(["kubectl"], 0, "configmap/c0 serverside-applied\n", "")
    sync.check_kubectl(done, 1, "serverside-applied")
    with pytest.raises(BenchError, match="reported 1 of 2 objects"):
        sync.check_kubectl(done, 2, "serverside-applied")


def test_sync_without_kube_binaries_runs_the_render_line_and_says_why(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    require(shutil.which(sync.KUBECTL) is not None, f"kubectl is not at {sync.KUBECTL}: it is the sync baseline")
    monkeypatch.setenv("GITWARD_KUBE_BIN_DIR", str(tmp_path))  # an empty directory: no kube-apiserver in it
    assert main(["--quick", "--runs", "1", "--only", "sync"]) == 0
    out = capsys.readouterr().out
    assert sorted(_ratio_lines(out)) == ["sync render plain tree"]
    assert re.search(r"first apply and no-op reconcile not run: \S*kube-apiserver is missing", out), out


def test_sync_request_counter_tells_writes_from_dry_runs(tmp_path: Path) -> None:
    missing = sync.missing_binaries()
    require(not missing, f"the sync lines need a kube-apiserver: {missing}")
    namespace = Manifest({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "counted"}})
    settings = Manifest({"apiVersion": "v1", "kind": "ConfigMap",
                         "metadata": {"name": "settings", "namespace": "counted"}, "data": {"a": "1"}})
    with sync.cluster(tmp_path) as running:
        assert running is not None
        with sync.requests_sent(running.client) as seen:
            apply_object(running.client.dynamic, namespace)
            dry_run_apply(running.client, settings)
            read_object(running.client, "v1", "ConfigMap", "counted", "settings")
        assert [verb for verb, _ in seen.writes] == ["PATCH"] and "/namespaces/counted" in seen.writes[0][1]
        assert seen.dry_runs == 1 and seen.methods["PATCH"] == 2  # GETs too: the read, and discovery
        with sync.requests_sent(running.client) as after:
            delete_object(running.client.dynamic, "v1", "Namespace", "", "counted")
        assert [verb for verb, _ in after.writes] == ["DELETE"]
