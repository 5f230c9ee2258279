"""docs/security.md names, for every promise, tests that exist."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "security.md"
CITATION = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")


def _sections() -> dict[str, str]:
    """Promise heading -> its text."""
    parts = re.split(r"^## (.+)$", DOC.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_every_cited_test_exists() -> None:
    cited = CITATION.findall(DOC.read_text(encoding="utf-8"))
    assert len(cited) >= 40
    missing = [
        f"{path}::{name}"
        for path, name in cited
        if not (REPO / path).is_file()
        or not re.search(rf"^def {name}\(", (REPO / path).read_text(encoding="utf-8"), re.M)
    ]
    assert missing == []


def test_every_promise_cites_a_test() -> None:
    sections = _sections()
    assert len(sections) == 10
    assert [heading for heading, text in sections.items() if not CITATION.search(text)] == []


def test_the_readme_links_the_promises() -> None:
    assert "(docs/security.md)" in (REPO / "README.md").read_text(encoding="utf-8")
