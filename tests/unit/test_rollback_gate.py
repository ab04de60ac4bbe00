"""The rollback and digest gates: which of two images is older, by time, and pins kept in step."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.errors import Problems
from engine.evaluate.chronology import Age, compare
from engine.evaluate.plan import Selection, plan_updates
from engine.model import Gate, ImageFacts, RuleSet
from engine.rules.load import builtin_rules_dir, load_files
from engine.rules.parse import parse_rules

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
JAN = datetime(2026, 1, 17, 2, 54, tzinfo=UTC)
NOV = datetime(2025, 11, 3, 11, 30, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SCAN_1 = NOW - timedelta(days=40)
SCAN_2 = NOW - timedelta(days=2)
A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64
C = "sha256:" + "c" * 64


@pytest.mark.parametrize(("deployed", "selected", "age", "words"), [
    (ImageFacts("v1", A, JAN), ImageFacts("latest", A, NOV), Age.SAME, "is the image git deploys"),
    (ImageFacts("20260117", A, JAN, SCAN_1), ImageFacts("20251103", B, NOV, SCAN_2), Age.OLDER,
     "20251103 was built 2025-11-03T11:30:00Z, before 20260117, the image git deploys "
     "(2026-01-17T02:54:00Z; the images' creation times in the registry)"),
    (ImageFacts("v9", A, NOV), ImageFacts("v10", B, JAN), Age.NEWER, "v10 was built 2026-01-17"),
    # the ledger's first sighting only when the creation times cannot tell
    (ImageFacts("v1", A, None, SCAN_1, "offline"), ImageFacts("v2", B, None, SCAN_2, "offline"),
     Age.NEWER, "the ledger first saw v2 at"),
    (ImageFacts("v1", A, EPOCH, SCAN_2), ImageFacts("v2", B, EPOCH, SCAN_1), Age.OLDER,
     "v2 says it was built 1970-01-01T00:00:00Z, a reproducible build's placeholder"),
    (ImageFacts("v1", A, JAN, SCAN_1), ImageFacts("v2", B, JAN, SCAN_2), Age.NEWER,
     "both say they were built 2026-01-17T02:54:00Z"),
    # the times disagree with the first sightings: the creation times win
    (ImageFacts("v10", A, JAN, SCAN_1), ImageFacts("v9", B, NOV, SCAN_2), Age.OLDER, "v9 was built"),
    (ImageFacts("v1", A, None, SCAN_1, "offline"), ImageFacts("v2", B, None, SCAN_1, "offline"),
     Age.UNKNOWN, "cannot tell whether v2 is older than v1, the image git deploys: no creation "
     "times to compare (v2: offline; v1: offline) and the ledger first saw both in the same scan"),
    (ImageFacts("v1"), ImageFacts("v2", B, JAN, SCAN_1), Age.UNKNOWN,
     "the ledger has never seen v1"),
])
def test_compare_by_digest_then_build_time_then_first_sighting(
        deployed: ImageFacts, selected: ImageFacts, age: Age, words: str) -> None:
    found = compare(deployed, selected)
    assert found.age is age
    assert words in found.basis


RULES = '''
source git flux-system/flux-system {
  url "ssh://git@example.com/org/homelab"
}
image repository apps/app {
  image "ghcr.io/org/app"
}
image policy apps/app {
  repository app
  select lowest alphabetical
}
image update apps/apps {
  source git flux-system/flux-system
  author "bot <bot@example.com>"
  push "main"
}
'''

DEPLOY = 'image: ghcr.io/org/app:20260117-0254 # {"$imagepolicy": "apps:app"}\n'


def rules(*fields: str) -> RuleSet:
    problems = Problems()
    text = RULES.replace("  select lowest alphabetical\n",
                         "  select lowest alphabetical\n" + "".join(f"  {f}\n" for f in fields))
    parsed = parse_rules("t.rules", text, problems)
    builtin = load_files(sorted(builtin_rules_dir().glob("*.rules")), problems, builtin=False)
    assert not problems.errors, [p.render(excerpt=False) for p in problems.errors]
    return RuleSet.of([*parsed, *builtin.all()])


def pick(tag: str, *images: ImageFacts) -> dict[str, Selection]:
    return {"apps/app": Selection(tag, decision_id=7, images=images)}


OLDEST = pick("20251103-1130",
              ImageFacts("20251103-1130", B, NOV, SCAN_1),
              ImageFacts("20260117-0254", A, JAN, SCAN_1))


def test_a_policy_that_selects_an_older_image_is_held_as_a_rollback() -> None:
    plan = plan_updates(rules(), {"app.yaml": DEPLOY}, OLDEST, NOW)
    assert plan.actions == ()
    [gate] = plan.gates
    assert (gate.gate, gate.current, gate.proposed, gate.applied) == \
        (Gate.ROLLBACK, "20260117-0254", "20251103-1130", False)
    assert gate.reason.startswith("20251103-1130 was built 2025-11-03T11:30:00Z, before "
                                  "20260117-0254, the image git deploys")
    assert ": a rollback; the policy selects the LOWEST value (Flux: order desc)" in gate.reason
    assert "write `allow rollback`" in gate.reason


def test_allow_rollback_lets_it_through() -> None:
    plan = plan_updates(rules("allow rollback"), {"app.yaml": DEPLOY}, OLDEST, NOW)
    [action] = plan.actions
    assert [f.new for f in action.files] == ["ghcr.io/org/app:20251103-1130"]
    assert plan.gates == ()


def test_an_image_of_unknown_age_is_held_and_the_reason_says_what_is_missing() -> None:
    unknown = pick("20251103-1130",
                   ImageFacts("20251103-1130", B, None, SCAN_1, "the registry was not asked (offline)"),
                   ImageFacts("20260117-0254", A, None, SCAN_1, "the registry was not asked (offline)"))
    [gate] = plan_updates(rules(), {"app.yaml": DEPLOY}, unknown, NOW).gates
    assert gate.gate is Gate.ROLLBACK
    assert gate.reason.startswith("cannot tell whether 20251103-1130 is older than 20260117-0254")
    assert "the registry was not asked (offline)" in gate.reason
    assert "the ledger first saw both in the same scan" in gate.reason
    assert "held as a possible rollback until it can" in gate.reason


def test_a_newer_image_goes_ahead_whatever_the_tags_say() -> None:
    newer = pick("20251103-1130",
                 ImageFacts("20251103-1130", B, JAN + timedelta(days=1), SCAN_1),
                 ImageFacts("20260117-0254", A, JAN, SCAN_2))
    [action] = plan_updates(rules(), {"app.yaml": DEPLOY}, newer, NOW).actions
    assert [f.new for f in action.files] == ["ghcr.io/org/app:20251103-1130"]


def test_never_downgrade_uses_the_images_ages_when_known() -> None:
    newer = pick("20251103-1130",
                 ImageFacts("20251103-1130", B, first_seen=SCAN_2),
                 ImageFacts("20260117-0254", A, first_seen=SCAN_1))
    # the policy's order ranks the new tag lower, but it was seen later: not a downgrade
    assert plan_updates(rules("never downgrade"), {"app.yaml": DEPLOY}, newer, NOW).actions != ()
    [gate] = plan_updates(rules("never downgrade", "allow rollback"), {"app.yaml": DEPLOY},
                          OLDEST, NOW).gates
    assert gate.gate is Gate.NEVER_DOWNGRADE
    assert gate.reason.endswith("creation times in the registry) (never downgrade)")


def test_values_that_deploy_no_version_are_not_rollbacks() -> None:
    files = {"a.yaml": 'image: ghcr.io/org/app # {"$imagepolicy": "apps:app"}\n',
             "b.yaml": 'name: ghcr.io/org/old # {"$imagepolicy": "apps:app:name"}\n',
             "c.yaml": 'tag: "" # {"$imagepolicy": "apps:app:tag"}\n'}
    [action] = plan_updates(rules(), files, pick("20251103-1130"), NOW).actions
    assert [f.new for f in action.files] == ["ghcr.io/org/app:20251103-1130", "ghcr.io/org/app",
                                             "20251103-1130"]


# Digests --------------------------------------------------------------------------------------

def digest_rules(*fields: str) -> RuleSet:
    return rules(*fields, "allow rollback")


V2 = pick("v2", ImageFacts("v2", B, JAN, SCAN_2), ImageFacts("v1", A, NOV, SCAN_1))


def test_a_digest_marker_gets_the_new_tags_digest_never_a_blank() -> None:
    files = {"v.yaml": f'tag: v1 # {{"$imagepolicy": "apps:app:tag"}}\n'
                       f'digest: {A} # {{"$imagepolicy": "apps:app:digest"}}\n'}
    plan = plan_updates(digest_rules(), files, V2, NOW)
    [action] = plan.actions
    assert [(f.old, f.new) for f in action.files] == [("v1", "v2"), (A, B)]
    [warning] = plan.warnings
    assert warning.code == "digest-pin-never" and "Flux would blank it" in warning.message


def test_a_pinned_reference_moves_with_its_tag() -> None:
    files = {"d.yaml": f'image: ghcr.io/org/app:v1@{A} # {{"$imagepolicy": "apps:app"}}\n'}
    plan = plan_updates(digest_rules(), files, V2, NOW)
    assert [f.new for a in plan.actions for f in a.files] == [f"ghcr.io/org/app:v2@{B}"]
    assert "Flux would strip it from the reference" in plan.warnings[0].message
    same = {"d.yaml": f'image: ghcr.io/org/app:v2@{C} # {{"$imagepolicy": "apps:app"}}\n'}
    assert plan_updates(digest_rules(), same, V2, NOW).actions == ()  # Never: the pin stays


def test_a_pin_whose_new_digest_is_unknown_is_held_not_stripped() -> None:
    unknown = pick("v2", ImageFacts("v2", "", None, SCAN_2, "the registry could not be read: 503"),
                   ImageFacts("v1", A, NOV, SCAN_1))
    files = {"d.yaml": f'image: ghcr.io/org/app:v1@{A} # {{"$imagepolicy": "apps:app"}}\n',
             "e.yaml": f'digest: {A} # {{"$imagepolicy": "apps:app:digest"}}\n'}
    plan = plan_updates(digest_rules(), files, unknown, NOW)
    assert plan.actions == ()
    assert {(g.path, g.gate) for g in plan.gates} == {("d.yaml", Gate.DIGEST), ("e.yaml", Gate.DIGEST)}
    assert "the digest of v2 is not known (the registry could not be read: 503)" in plan.gates[0].reason


def test_reflecting_policies_write_the_digest_as_flux_does() -> None:
    files = {"d.yaml": 'image: ghcr.io/org/app:v1 # {"$imagepolicy": "apps:app"}\n',
             "e.yaml": 'digest: "" # {"$imagepolicy": "apps:app:digest"}\n'}
    plan = plan_updates(digest_rules("digest if-not-present"), files, V2, NOW)
    assert [f.new for a in plan.actions for f in a.files] == [f"ghcr.io/org/app:v2@{B}", B]
    assert plan.warnings == ()
    never = plan_updates(digest_rules(), files, V2, NOW)
    assert [f.new for a in never.actions for f in a.files] == ["ghcr.io/org/app:v2"]


def test_always_moves_a_repushed_tag_unless_its_image_is_older() -> None:
    files = {"d.yaml": f'image: ghcr.io/org/app:v2@{A} # {{"$imagepolicy": "apps:app"}}\n'}
    repushed = pick("v2", ImageFacts("v2", B, JAN, SCAN_1), ImageFacts("v2", A, NOV, SCAN_1))
    plan = plan_updates(rules("digest always"), files, repushed, NOW)
    assert [f.new for a in plan.actions for f in a.files] == [f"ghcr.io/org/app:v2@{B}"]
    back = pick("v2", ImageFacts("v2", B, NOV, SCAN_1), ImageFacts("v2", A, JAN, SCAN_1))
    [gate] = plan_updates(rules("digest always"), files, back, NOW).gates
    assert gate.gate is Gate.ROLLBACK and "v2 was built 2025-11-03" in gate.reason


def test_a_new_image_name_on_the_same_tag_is_no_rollback() -> None:
    files = {"m.yaml": 'image: mirror.example/org/app:20251103-1130 # {"$imagepolicy": "apps:app"}\n'}
    [action] = plan_updates(rules(), files, pick("20251103-1130"), NOW).actions
    assert [f.new for f in action.files] == ["ghcr.io/org/app:20251103-1130"]
