"""The `alert` statement: parsed into `Alert`, printed back, and bad alerts reported in place."""

from __future__ import annotations

import pytest

from engine.errors import Problems
from engine.model import Alert, AlertEvent, AlertKind, ObjectKey, RuleSet
from engine.rules.parse import parse_rules
from engine.rules.printer import print_rules


def parse(text: str) -> tuple[list[object], list[str]]:
    problems = Problems()
    rules = parse_rules("alerts.rules", text, problems)
    return list(rules), [p.render(excerpt=False) for p in problems]


def test_webhook_alert_on_both_events() -> None:
    rules, problems = parse('alert ops {\n  on update failure\n  webhook "https://hooks.example.com/x?t=1"\n}\n')
    assert problems == []
    assert rules == [Alert("ops", (AlertEvent.UPDATE, AlertEvent.FAILURE), AlertKind.WEBHOOK,
                           "https://hooks.example.com/x?t=1")]
    alert = rules[0]
    assert isinstance(alert, Alert)
    assert alert.key == ObjectKey("Alert", "", "ops")
    assert alert.target == "https://hooks.example.com/x?t=1"
    assert alert.origin is not None and (alert.origin.line, alert.origin.column) == (1, 7)


def test_ntfy_alert_splits_server_and_topic() -> None:
    rules, problems = parse('alert phone {\n  on failure\n  ntfy "https://ntfy.example/prefix/homelab_1"\n}\n')
    assert problems == []
    assert rules == [Alert("phone", (AlertEvent.FAILURE,), AlertKind.NTFY,
                           "https://ntfy.example/prefix", "homelab_1")]
    assert isinstance(rules[0], Alert) and rules[0].target == "https://ntfy.example/prefix/homelab_1"


def test_alerts_print_back_and_join_the_ruleset() -> None:
    alerts = [
        Alert("b", (AlertEvent.FAILURE, AlertEvent.UPDATE), AlertKind.NTFY, "http://127.0.0.1:8080", "t"),
        Alert("a", (AlertEvent.UPDATE,), AlertKind.WEBHOOK, "https://u:p@hooks.example.com/p"),
    ]
    text = print_rules(alerts)
    assert text == (
        'alert b {\n  on failure update\n  ntfy "http://127.0.0.1:8080/t"\n}\n\n'
        'alert a {\n  on update\n  webhook "https://u:p@hooks.example.com/p"\n}\n'
    )
    rules, problems = parse(text)
    assert problems == [] and rules == alerts
    ruleset = RuleSet.of(alerts)
    assert [a.name for a in ruleset.alerts] == ["a", "b"]
    assert ruleset.get(ObjectKey("Alert", "", "b")) == alerts[0]
    assert len(ruleset) == 2


@pytest.mark.parametrize(("text", "expected"), [
    ('alert x {\n  webhook "https://h.example/x"\n}\n',
     "alerts.rules:1:7: error: alert x: missing required field 'on'\n  hint: add: on update failure"),
    ('alert x {\n  on update\n}\n',
     "alerts.rules:1:7: error: alert x: missing required field 'webhook' or 'ntfy'"
     '\n  hint: add: webhook "https://hooks.example.com/gitward"'),
    ('alert x {\n  on update\n  webhook "https://h.example/x"\n  ntfy "https://ntfy.sh/t"\n}\n',
     "alerts.rules:4:3: error: only one of webhook or ntfy may be given (first at 3:3)"),
    ('alert x {\n  on update sometimes\n  webhook "https://h.example/x"\n}\n',
     "alerts.rules:2:13: error: unknown event 'sometimes': expected update or failure"),
    ('alert x {\n  on update update\n  webhook "https://h.example/x"\n}\n',
     "alerts.rules:2:13: error: on: 'update' given twice"),
    ('alert x {\n  on failure\n  webhook "ftp://h.example/x"\n}\n',
     'alerts.rules:3:11: error: webhook expects an http(s) URL with a host, not "ftp://h.example/x"'
     '\n  hint: write: webhook "https://hooks.example.com/gitward"'),
    ('alert x {\n  on failure\n  ntfy "https://ntfy.sh/"\n}\n',
     'alerts.rules:3:8: error: ntfy expects a topic URL, not "https://ntfy.sh/"'
     '\n  hint: the URL ends with the topic: ntfy "https://ntfy.sh/my-topic"'),
    ('alert x {\n  on failure\n  ntfy "https://ntfy.sh/t?auth=1"\n}\n',
     'alerts.rules:3:8: error: ntfy expects a topic URL, not "https://ntfy.sh/t?auth=1"'
     '\n  hint: the URL ends with the topic: ntfy "https://ntfy.sh/my-topic"'),
    ('alert ops/x {\n  on failure\n  ntfy "https://ntfy.sh/t"\n}\n',
     "alerts.rules:1:7: error: an alert has no namespace: 'ops/x'"),
])
def test_bad_alerts_are_located(text: str, expected: str) -> None:
    rules, problems = parse(text)
    assert rules == []
    assert problems == [expected]
