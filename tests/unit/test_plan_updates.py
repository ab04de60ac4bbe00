"""The pure update planner: scope, namespaces, gates, grouping, messages and trailers."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from engine.errors import Problems
from engine.evaluate.plan import Selection, plan_updates, rewrite_all
from engine.model import Gate, ImageFacts, RuleSet
from engine.rules.load import builtin_rules_dir, load_files
from engine.rules.parse import parse_rules

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

RULES = '''
source git flux-system/flux-system {
  url "ssh://git@example.com/org/homelab"
}
image repository apps/web {
  image "ghcr.io/org/web"
}
image policy apps/web {
  repository web
  select highest semver ">=1.0.0"
}
image repository apps/api {
  image "ghcr.io/org/api"
}
image policy apps/api {
  repository api
  select highest semver ">=1.0.0"
}
image repository other/db {
  image "ghcr.io/org/db"
}
image policy other/db {
  repository db
  select highest semver ">=1.0.0"
}
image update apps/apps {
  source git flux-system/flux-system
  path "./cluster/apps"
  author "bot <bot@example.com>"
  push "main"
}
'''

WEB = 'image: ghcr.io/org/web:1.0.0 # {"$imagepolicy": "apps:web"}\n'
API_TAG = 'tag: "1.0.0" # {"$imagepolicy": "apps:api:tag"}\n'
DB = 'image: ghcr.io/org/db:1.0.0 # {"$imagepolicy": "other:db"}\n'


def rules(extra: str = "", **policy_fields: str) -> RuleSet:
    problems = Problems()
    text = RULES + extra
    for name, field in policy_fields.items():
        text = text.replace(f"image policy apps/{name} {{\n", f"image policy apps/{name} {{\n  {field}\n")
    parsed = parse_rules("t.rules", text, problems)
    builtin = load_files(sorted(builtin_rules_dir().glob("*.rules")), problems, builtin=False)
    assert not problems.errors, [p.render(excerpt=False) for p in problems.errors]
    return RuleSet.of([*parsed, *builtin.all()])


FILES = {
    "cluster/apps/web.yaml": WEB,
    "cluster/apps/api.yaml": API_TAG,
    "cluster/apps/db.yaml": DB,
    "cluster/infra/web.yaml": WEB,
}


def newer(tag: str, decision: int) -> Selection:
    """A selection the ledger first saw after 1.0.0, the tag the files deploy: not a rollback."""
    return Selection(tag, decision_id=decision, images=(
        ImageFacts(tag, first_seen=NOW - timedelta(days=1)),
        ImageFacts("1.0.0", first_seen=NOW - timedelta(days=30))))


PICKS = {"apps/web": newer("1.2.0", 11), "apps/api": newer("1.1.0", 12), "other/db": newer("2.0.0", 13)}


def test_one_action_with_every_change_in_scope_and_namespace() -> None:
    plan = plan_updates(rules(), FILES, PICKS, NOW)
    [action] = plan.actions
    assert (action.source.ref, action.checkout_branch, action.push_branch) == \
        ("flux-system/flux-system", "main", "main")
    assert [(f.path, f.old, f.new, f.policy) for f in action.files] == [
        ("cluster/apps/api.yaml", "1.0.0", "1.1.0", "apps/api"),
        ("cluster/apps/web.yaml", "ghcr.io/org/web:1.0.0", "ghcr.io/org/web:1.2.0", "apps/web"),
    ]
    assert action.decisions == (11, 12)
    assert action.message == (
        "Update images\n\n"
        "- 1.0.0 -> 1.1.0 (apps/api)\n"
        "- ghcr.io/org/web:1.0.0 -> ghcr.io/org/web:1.2.0 (apps/web)\n\n"
        "Gitward-Decision: 11\nGitward-Decision: 12")


def test_rewrite_keeps_quotes_and_everything_else() -> None:
    plan = plan_updates(rules(), FILES, PICKS, NOW)
    texts = rewrite_all(rules(), FILES, PICKS, NOW, plan.actions)
    assert texts == {
        "cluster/apps/api.yaml": 'tag: "1.1.0" # {"$imagepolicy": "apps:api:tag"}\n',
        "cluster/apps/web.yaml": 'image: ghcr.io/org/web:1.2.0 # {"$imagepolicy": "apps:web"}\n',
    }


def test_current_values_plan_nothing() -> None:
    current = {"cluster/apps/web.yaml": WEB.replace("1.0.0", "1.2.0")}
    assert plan_updates(rules(), current, PICKS, NOW).actions == ()


def test_a_policy_without_selection_changes_nothing() -> None:
    assert plan_updates(rules(), FILES, {}, NOW).actions == ()


def test_hold_keeps_a_fresh_tag_back() -> None:
    fresh = {**PICKS, "apps/web": replace(PICKS["apps/web"], first_seen=NOW - timedelta(minutes=20))}
    plan = plan_updates(rules(web="hold 1h"), FILES, fresh, NOW)
    assert [f.policy for a in plan.actions for f in a.files] == ["apps/api"]
    [gate] = plan.gates
    assert (gate.gate, gate.current, gate.proposed, gate.applied) == (Gate.HOLD, "1.0.0", "1.2.0", False)
    assert "first seen 20m ago; hold 1h0m lasts until 2026-03-01T12:40:00Z" in gate.reason
    settled = {**PICKS, "apps/web": replace(PICKS["apps/web"], first_seen=NOW - timedelta(hours=2))}
    assert len(plan_updates(rules(web="hold 1h"), FILES, settled, NOW).actions[0].files) == 2


def test_never_downgrade_uses_the_policy_ordering() -> None:
    ahead = {**FILES, "cluster/apps/web.yaml": WEB.replace("1.0.0", "1.10.0")}
    plan = plan_updates(rules(web="never downgrade"), ahead, PICKS, NOW)
    assert [f.policy for a in plan.actions for f in a.files] == ["apps/api"]
    [gate] = plan.gates
    assert gate.gate is Gate.NEVER_DOWNGRADE and gate.current == "1.10.0"
    assert "1.2.0 ranks below 1.10.0" in gate.reason


def test_pin_wins_over_the_selection() -> None:
    plan = plan_updates(rules(web='pin "1.0.5"'), FILES, PICKS, NOW)
    web = [f for a in plan.actions for f in a.files if f.policy == "apps/web"]
    assert [f.new for f in web] == ["ghcr.io/org/web:1.0.5"]
    assert [g.gate for g in plan.gates] == [Gate.PIN] and plan.gates[0].applied


def test_suspended_automation_plans_nothing_and_says_so() -> None:
    plan = plan_updates(rules(), FILES, PICKS, NOW, suspended=frozenset({"apps/apps"}))
    assert plan.actions == ()
    assert plan.skipped == ("ImageUpdateAutomation apps/apps is suspended: it plans nothing",)


def test_two_automations_on_one_branch_make_one_commit() -> None:
    extra = '''
image update other/db {
  source git flux-system/flux-system
  path "./cluster"
  author "bot <bot@example.com>"
  message "Bump {{ len .Changed.Changes }} image(s) for {{ .AutomationObject }}: {{ range $f, $_ := .Changed.FileChanges }}{{ $f }}{{ end }}"
  push "main"
}
'''
    plan = plan_updates(rules(extra), FILES, PICKS, NOW)
    [action] = plan.actions
    assert action.automations == ("apps/apps", "other/db")
    assert [f.policy for f in action.files] == ["apps/api", "other/db", "apps/web"]
    assert "Bump 1 image(s) for other/db: apps/db.yaml" in action.message
    assert action.message.endswith("Gitward-Decision: 11\nGitward-Decision: 12\nGitward-Decision: 13")


def test_a_flux_template_renders_with_flux_data() -> None:
    extra = '''
image update other/db {
  source git flux-system/flux-system
  author "bot <bot@example.com>"
  message """
    Automation: {{ .AutomationObject }} ({{ .AutomationObject.Name }})
    {{ range .Changed.Changes -}}
    - {{ .OldValue }} -> {{ .NewValue }} [{{ .Setter }}]
    {{ end -}}
    {{ range $file, $objects := .Changed.FileChanges }}{{ range $obj, $_ := $objects }}{{ $file }}: {{ $obj.Kind }}/{{ $obj.Name }}{{ end }}{{ end }}
  """
  push "other"
}
'''
    deployment = ("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: db\n  namespace: other\n"
                  "spec:\n  " + DB)
    plan = plan_updates(rules(extra), {**FILES, "cluster/apps/db.yaml": deployment}, PICKS, NOW)
    other = next(a for a in plan.actions if a.push_branch == "other")
    assert other.message == (
        "Automation: other/db (db)\n"
        "- ghcr.io/org/db:1.0.0 -> ghcr.io/org/db:2.0.0 [other:db]\n"
        "cluster/apps/db.yaml: Deployment/db\n\n"
        "Gitward-Decision: 13")


def test_a_broken_template_is_an_error_and_plans_no_commit_for_its_automation() -> None:
    extra = '''
image update other/db {
  source git flux-system/flux-system
  author "bot <bot@example.com>"
  message "{{ .Changed.Foo }}"
  push "other"
}
'''
    plan = plan_updates(rules(extra), FILES, PICKS, NOW)
    assert [a.push_branch for a in plan.actions] == ["main"]
    [error] = plan.errors
    assert error.automation == "other/db"
    assert error.problem.message == (
        "ImageUpdateAutomation other/db: commit message template: "
        'template: commit message:1:11: executing "commit message" at <.Changed.Foo>: '
        "can't evaluate field Foo in type update.Result")
    assert error.problem.pos is not None and error.problem.pos.path == "t.rules"


@pytest.mark.parametrize("scope", ["./cluster/apps", "cluster/apps/", "cluster/apps"])
def test_path_spellings_mean_the_same_scope(scope: str) -> None:
    text = RULES.replace('path "./cluster/apps"', f'path "{scope}"')
    problems = Problems()
    parsed = parse_rules("t.rules", text, problems)
    builtin = load_files(sorted(builtin_rules_dir().glob("*.rules")), problems, builtin=False)
    plan = plan_updates(RuleSet.of([*parsed, *builtin.all()]), FILES, PICKS, NOW)
    assert {f.path for a in plan.actions for f in a.files} == {"cluster/apps/api.yaml",
                                                               "cluster/apps/web.yaml"}
