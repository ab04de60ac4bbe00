"""Tables for people: at most 100 columns, and a word (a tag, a revision) never cut in pieces."""

from __future__ import annotations

import pytest

from engine.cli.output import table

TAG = "20251105-1650-sha-8b9c0d1"
SIG = "sha256-9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08.sig"


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """A terminal wider than 100 columns: the table still stops at 100."""
    monkeypatch.setenv("COLUMNS", "160")


def printed(capsys: pytest.CaptureFixture[str], *args: object, **kwargs: object) -> list[str]:
    table(*args, **kwargs)  # type: ignore[arg-type]
    lines = capsys.readouterr().out.splitlines()
    assert all(len(line) <= 100 for line in lines), "\n".join(lines)
    return lines


def test_a_table_that_fits_is_one_line_per_row(capsys: pytest.CaptureFixture[str]) -> None:
    lines = printed(capsys, ["NAME", "READY", "MESSAGE"], [["web", "True", "resolved to 1.2.0"]])
    assert [line.split() for line in lines] == [["NAME", "READY", "MESSAGE"],
                                                ["web", "True", "resolved", "to", "1.2.0"]]


def test_a_message_wraps_between_words_when_its_longest_word_fits(
        capsys: pytest.CaptureFixture[str]) -> None:
    message = " ".join(["word"] * 30 + [TAG])
    lines = printed(capsys, ["NAME", "MESSAGE"], [["web", message]])
    assert len(lines) > 2 and any(TAG in line for line in lines)


def test_a_message_with_a_word_too_long_for_its_column_goes_under_its_row(
        capsys: pytest.CaptureFixture[str]) -> None:
    rows = [["ledger", "ledger", TAG, "20251104-0805-sha-6f7a8b9", "True",
             f"latest tag resolved to {TAG}"],
            ["podinfo", "podinfo", "6.7.0", "6.5.1", "True", "ok"]]
    lines = printed(capsys, ["NAMESPACE", "NAME", "LATEST TAG", "PREVIOUS", "READY", "MESSAGE"], rows)
    assert lines[0].split() == ["NAMESPACE", "NAME", "LATEST", "TAG", "PREVIOUS", "READY", "MESSAGE"]
    assert lines[1].split() == ["ledger", "ledger", TAG, "20251104-0805-sha-6f7a8b9", "True"]
    assert lines[2] == f"    latest tag resolved to {TAG}"
    assert lines[3].split() == ["podinfo", "podinfo", "6.7.0", "6.5.1", "True", "ok"]  # it fits


def test_a_tag_longer_than_the_room_left_is_never_split(capsys: pytest.CaptureFixture[str]) -> None:
    rows = [["1", "selected", "2025-11-05 17:00", TAG], ["", "excluded", "2025-11-03 12:05", SIG]]
    lines = printed(capsys, ["RANK", "VERDICT", "FIRST SEEN", "TAG"], rows, wrap="TAG")
    assert lines[1].endswith(TAG)
    assert lines[2].split() == ["excluded", "2025-11-03", "12:05"]
    assert lines[3] == f"    {SIG}"
