"""deploy/*.yaml parse, hold the kinds docs/deploy.md promises, and run a real gitward command."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import ROOT, require
from tests.e2e.test_docs_commands import resolve

DEPLOY = ROOT / "deploy"


def _documents() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(DEPLOY.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            assert isinstance(doc, dict) and doc.get("apiVersion") and doc.get("kind"), path.name
            found[f"{doc['kind']}/{doc.get('metadata', {}).get('name', '')}"] = doc
    return found


def test_every_manifest_parses_with_the_expected_kinds() -> None:
    docs = _documents()
    assert {"Namespace/gitward-system", "ServiceAccount/gitward", "ClusterRole/gitward",
            "ClusterRoleBinding/gitward", "PersistentVolumeClaim/gitward-state",
            "Secret/gitward-deploy-key", "ConfigMap/gitward-kubeconfig",
            "Deployment/gitward"} <= set(docs)
    for key, doc in docs.items():
        if doc["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding", "Kustomization"):
            assert doc["metadata"]["namespace"] == "gitward-system", key


def test_the_kustomization_lists_every_manifest() -> None:
    [kustomization] = [d for d in _documents().values() if d["kind"] == "Kustomization"]
    listed = set(kustomization["resources"])
    assert listed == {p.name for p in DEPLOY.glob("*.yaml")} - {"kustomization.yaml"}


def test_the_deployment_runs_gitward_with_its_state_on_the_volume() -> None:
    deployment = _documents()["Deployment/gitward"]
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert resolve(container["args"]) == "run"
    args = container["args"]
    assert args[args.index("--repo") + 1] == "/work/repo"
    # the rules follow the synced repository: the example's own GitRepository
    assert args[args.index("--rules-from") + 1] == "flux-system"
    assert "name: flux-system\n" in (ROOT / "examples/homelab/cluster/system/flux-system/gotk-sync.yaml").read_text()
    state_dir = next(m["mountPath"] for m in container["volumeMounts"] if m["name"] == "state")
    assert args[args.index("--state") + 1].startswith(state_dir + "/")
    claims = {v["name"]: v.get("persistentVolumeClaim", {}).get("claimName") for v in pod["volumes"]}
    assert claims["state"] == "gitward-state"
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"]["type"] == "Recreate"
    assert pod["serviceAccountName"] == "gitward"
    metrics = args[args.index("--metrics-addr") + 1]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert {p["name"]: p["containerPort"] for p in container["ports"]}["metrics"] == int(metrics.rsplit(":", 1)[1])


def test_the_secret_holds_placeholders_not_a_key() -> None:
    secret = _documents()["Secret/gitward-deploy-key"]
    for value in secret["stringData"].values():
        assert "REPLACE" in value and "PRIVATE KEY-----" not in value


def test_the_monitoring_kustomization_lists_its_manifests_and_the_dashboard() -> None:
    monitoring = DEPLOY / "monitoring"
    kustomization = yaml.safe_load((monitoring / "kustomization.yaml").read_text())
    assert set(kustomization["resources"]) == {p.name for p in monitoring.glob("*.yaml")} - {"kustomization.yaml"}
    [generated] = kustomization["configMapGenerator"]
    assert generated["options"]["labels"] == {"grafana_dashboard": "1"}  # the Grafana sidecar's label
    [dashboard] = generated["files"]
    assert json.loads((monitoring / dashboard.partition("=")[2]).read_text())["uid"] == "gitward"
    kinds = {yaml.safe_load((monitoring / r).read_text())["kind"] for r in kustomization["resources"]}
    assert kinds == {"PrometheusRule", "PodMonitor"}


def test_promtool_accepts_the_alerts_and_every_dashboard_query(tmp_path: Path) -> None:
    """Each PromQL text of deploy/monitoring/ parses (Debian's prometheus package: promtool)."""
    promtool = shutil.which("promtool")
    require(promtool is not None, "promtool is not installed (apt-get install prometheus)")
    assert promtool is not None
    monitoring = DEPLOY / "monitoring"
    rule = yaml.safe_load((monitoring / "prometheusrule.yaml").read_text())
    dashboard = json.loads((monitoring / "grafana-dashboard.json").read_text())
    grafana = {"$__rate_interval": "5m", "$namespace": ".*", "$kind": ".*"}
    queries = []
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            expr = target["expr"]
            for variable, example in grafana.items():
                expr = expr.replace(variable, example)
            queries.append({"record": f"dashboard:panel{panel['id']}:{target['refId']}", "expr": expr})
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": [*rule["spec"]["groups"],
                                                {"name": "dashboard", "rules": queries}]}))
    checked = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, text=True,
                             check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    alerts = sum(len(group["rules"]) for group in rule["spec"]["groups"])
    assert f"SUCCESS: {len(queries) + alerts} rules found" in checked.stdout
