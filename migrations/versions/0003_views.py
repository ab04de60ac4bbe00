"""audit views

Four read-only views over the facts and actions, so the common audits are one `SELECT` away:
`v_image_updates`, `v_policy_latest`, `v_object_history`, `v_tag_lead_time`.

Revision ID: 0003
Revises: 0002
Create Date: 2025-12-03

JSON in `actions.payload` is read with each dialect's own functions (SQLite `json_each` /
`json_extract`, PostgreSQL `json_array_elements` / `->>`), so each view is written twice; both
spellings give the same column names, in the same order, with the same types. Frozen history:
the SQL is spelled out here, never built from engine/ code.

A later migration that rebuilds a table these views read (SQLite batch mode) must drop the
views first and create them again after.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# One row per file entry of a commit that was pushed (actions of type commit, status done).
_IMAGE_UPDATES = {
    "sqlite": """
SELECT a.id AS action_id,
       a.plan_id AS plan_id,
       CAST(json_extract(a.payload, '$.repository') AS TEXT) AS source,
       CAST(json_extract(a.payload, '$.branch') AS TEXT) AS branch,
       CAST(json_extract(a.payload, '$.commit') AS TEXT) AS commit_sha,
       a.finished_at AS committed_at,
       CAST(json_extract(f.value, '$.path') AS TEXT) AS path,
       CAST(json_extract(f.value, '$.line') AS INTEGER) AS line,
       CAST(json_extract(f.value, '$.policy') AS TEXT) AS policy,
       CAST(json_extract(f.value, '$.old') AS TEXT) AS old_value,
       CAST(json_extract(f.value, '$.new') AS TEXT) AS new_value,
       (SELECT max(d.id)
        FROM json_each(a.payload, '$.decisions') j
        JOIN policy_decisions d ON d.id = j.value
        WHERE d.policy = json_extract(f.value, '$.policy')) AS decision_id
FROM actions a, json_each(a.payload, '$.files') f
WHERE a.type = 'commit' AND a.status = 'done'
""",
    "postgresql": """
SELECT a.id AS action_id,
       a.plan_id AS plan_id,
       a.payload ->> 'repository' AS source,
       a.payload ->> 'branch' AS branch,
       a.payload ->> 'commit' AS commit_sha,
       a.finished_at AS committed_at,
       f.value ->> 'path' AS path,
       CAST(f.value ->> 'line' AS INTEGER) AS line,
       f.value ->> 'policy' AS policy,
       f.value ->> 'old' AS old_value,
       f.value ->> 'new' AS new_value,
       (SELECT max(d.id)
        FROM json_array_elements_text(a.payload -> 'decisions') AS j(value)
        JOIN policy_decisions d ON d.id = CAST(j.value AS INTEGER)
        WHERE d.policy = f.value ->> 'policy') AS decision_id
FROM actions a, json_array_elements(a.payload -> 'files') AS f(value)
WHERE a.type = 'commit' AND a.status = 'done'
""",
}

# Each policy's latest decision that selected a tag (refusals and failures leave it standing).
_POLICY_LATEST = """
SELECT d.policy AS policy,
       d.selected_tag AS selected_tag,
       d.previous_tag AS previous_tag,
       d.decided_at AS decided_at,
       d.id AS decision_id,
       d.scan_id AS scan_id,
       s.repository AS repository,
       s.finished_at AS scanned_at
FROM policy_decisions d
LEFT JOIN image_scans s ON s.id = d.scan_id
WHERE d.selected_tag IS NOT NULL
  AND NOT EXISTS (
    SELECT 1 FROM policy_decisions n
    WHERE n.policy = d.policy AND n.selected_tag IS NOT NULL
      AND (n.decided_at > d.decided_at OR (n.decided_at = d.decided_at AND n.id > d.id)))
"""

# The object's name as gitward prints it (engine.model.ObjectId.__str__): Kind[.group]/[ns/]name.
_OBJECT = ("CASE WHEN o.api_group = '' THEN o.kind ELSE o.kind || '.' || o.api_group END"
           " || CASE WHEN o.namespace = '' THEN '' ELSE '/' || o.namespace END || '/' || o.name")

# Every write an apply or prune action recorded, then the inventory's current state.
_OBJECT_HISTORY = {
    "sqlite": f"""
SELECT substr(a.target, length('Kustomization/') + 1) AS kustomization,
       CAST(json_extract(x.value, '$.object') AS TEXT) AS object,
       CAST(json_extract(a.payload, '$.revision') AS TEXT) AS revision,
       CAST(json_extract(x.value, '$.change') AS TEXT) AS change,
       a.finished_at AS at,
       a.status AS status,
       a.id AS action_id,
       'actions' AS recorded_in
FROM actions a, json_each(a.payload, '$.objects') x
WHERE a.type IN ('apply', 'prune') AND a.status <> 'planned'
UNION ALL
SELECT o.kustomization, {_OBJECT}, o.revision, 'applied', o.applied_at, 'done', NULL,
       'cluster_objects'
FROM cluster_objects o
UNION ALL
SELECT o.kustomization, {_OBJECT}, o.revision, 'pruned', o.pruned_at, 'done', NULL,
       'cluster_objects'
FROM cluster_objects o
WHERE o.pruned_at IS NOT NULL
""",
    "postgresql": f"""
SELECT substr(a.target, length('Kustomization/') + 1) AS kustomization,
       x.value ->> 'object' AS object,
       a.payload ->> 'revision' AS revision,
       x.value ->> 'change' AS change,
       a.finished_at AS at,
       CAST(a.status AS TEXT) AS status,
       a.id AS action_id,
       CAST('actions' AS TEXT) AS recorded_in
FROM actions a, json_array_elements(a.payload -> 'objects') AS x(value)
WHERE a.type IN ('apply', 'prune') AND a.status <> 'planned'
UNION ALL
SELECT CAST(o.kustomization AS TEXT), {_OBJECT}, CAST(o.revision AS TEXT), 'applied',
       o.applied_at, 'done', NULL, 'cluster_objects'
FROM cluster_objects o
UNION ALL
SELECT CAST(o.kustomization AS TEXT), {_OBJECT}, CAST(o.revision AS TEXT), 'pruned',
       o.pruned_at, 'done', NULL, 'cluster_objects'
FROM cluster_objects o
WHERE o.pruned_at IS NOT NULL
""",
}

# From first sight in the registry, to the commit that wrote the tag, to the first time an
# object was applied from that commit's revision (`<ref>@sha1:<commit>`) at or after it.
_TAG_LEAD_TIME = """
SELECT l.policy, l.repository, l.tag, l.first_seen, l.commit_sha, l.committed_at, l.applied_at,
       {seconds_to_commit} AS seconds_to_commit,
       {seconds_to_apply} AS seconds_to_apply
FROM (
  SELECT c.policy, c.repository, c.tag, c.first_seen, c.commit_sha, c.committed_at,
         (SELECT min(h.at) FROM v_object_history h
          WHERE h.change NOT IN ('prune', 'pruned') AND h.status = 'done'
            AND h.at >= c.committed_at AND {ends_with}) AS applied_at
  FROM (
    SELECT DISTINCT u.policy AS policy, t.repository AS repository, t.tag AS tag,
           t.first_seen AS first_seen, u.commit_sha AS commit_sha, u.committed_at AS committed_at
    FROM v_image_updates u
    JOIN policy_decisions d ON d.id = u.decision_id
    JOIN image_scans s ON s.id = d.scan_id
    JOIN image_tags t ON t.repository = s.repository AND {tag_in_value}
  ) c
) l
"""

_DIALECT = {
    "sqlite": {
        "ends_with": "substr(h.revision, -length(c.commit_sha) - 5) = 'sha1:' || c.commit_sha",
        "tag_in_value": ("(u.new_value = t.tag"
                         " OR substr(u.new_value, -length(t.tag) - 1) = ':' || t.tag"
                         " OR instr(u.new_value, ':' || t.tag || '@') > 0)"),
        "seconds": "CAST(round((julianday({end}) - julianday({start})) * 86400) AS INTEGER)",
    },
    "postgresql": {
        "ends_with": "right(h.revision, length(c.commit_sha) + 5) = 'sha1:' || c.commit_sha",
        "tag_in_value": ("(u.new_value = t.tag"
                         " OR right(u.new_value, length(t.tag) + 1) = ':' || t.tag"
                         " OR strpos(u.new_value, ':' || t.tag || '@') > 0)"),
        "seconds": "CAST(round(extract(epoch FROM {end} - {start})) AS INTEGER)",
    },
}

VIEWS = ("v_image_updates", "v_policy_latest", "v_object_history", "v_tag_lead_time")


def _tag_lead_time(dialect: str) -> str:
    spelled = _DIALECT[dialect]
    seconds = spelled["seconds"]
    return _TAG_LEAD_TIME.format(
        seconds_to_commit=seconds.format(end="l.committed_at", start="l.first_seen"),
        seconds_to_apply=seconds.format(end="l.applied_at", start="l.committed_at"),
        ends_with=spelled["ends_with"],
        tag_in_value=spelled["tag_in_value"],
    )


def _definitions(dialect: str) -> dict[str, str]:
    if dialect not in _DIALECT:
        raise NotImplementedError(f"gitward's views are written for SQLite and PostgreSQL, not {dialect}")
    return {
        "v_image_updates": _IMAGE_UPDATES[dialect],
        "v_policy_latest": _POLICY_LATEST,
        "v_object_history": _OBJECT_HISTORY[dialect],
        "v_tag_lead_time": _tag_lead_time(dialect),
    }


def upgrade() -> None:
    for name, body in _definitions(op.get_context().dialect.name).items():
        op.execute(f"CREATE VIEW {name} AS {body.strip()}")


def downgrade() -> None:
    for name in reversed(VIEWS):
        op.execute(f"DROP VIEW IF EXISTS {name}")
