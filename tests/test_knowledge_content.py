"""The real knowledge base against the outline and the fact sheet (../shared/)."""

import re
from pathlib import Path

import pytest

from bot.languages import LANGUAGES
from bot.telegram_html import to_plain

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
PHONE = re.compile(r"(?<![\d-])(?:1[-. ])?\(?\d{3}\)?[-. ]?\d{3}[-. ]\d{4}(?!\d)")
TIP_LINE = re.compile(r"DHS-?2-?ICE|347-?2423", re.I)

needs_shared = pytest.mark.skipif(not (SHARED / "facts.md").is_file(),
                                  reason="../shared/facts.md is not beside this checkout")


def digits(number: str) -> str:
    d = re.sub(r"\D", "", number)
    return d[1:] if len(d) == 11 and d.startswith("1") else d


def fact_numbers():
    """Numbers in facts.md by status: a line's VERIFIED/PARTIAL tag vouches for its numbers;
    numbers on UNVERIFIED-only lines, and struck-through ones, are not allowed."""
    verified, partial = set(), set()
    for line in (SHARED / "facts.md").read_text(encoding="utf-8").splitlines():
        line = re.sub(r"~~.*?~~", "", line)
        status = line.replace("UNVERIFIED", "")
        for number in PHONE.findall(line):
            if "PARTIAL" in status:
                partial.add(digits(number))
            elif "VERIFIED" in status:
                verified.add(digits(number))
    return verified, partial - verified


def outline_ids():
    text = (SHARED / "kb-outline.md").read_text(encoding="utf-8")
    return re.findall(r"^\|\s*`([a-z0-9-]+)`\s*\|", text, flags=re.M)


@needs_shared
def test_every_outline_entry_exists_complete(real_kb):
    ids = outline_ids()
    assert len(ids) >= 29
    for entry_id in ids:
        assert entry_id in real_kb.entries, f"missing outline entry {entry_id}"
        entry = real_kb.entries[entry_id]
        assert entry.sources, f"{entry_id}: no source"
        assert entry.reviewed is not None
        for lang in LANGUAGES:
            tr = entry.text(lang)
            assert len(tr.questions) >= 8, f"{entry_id} [{lang}]: {len(tr.questions)} questions"
            assert tr.title and tr.answer


@needs_shared
def test_every_phone_number_is_verified_in_facts(real_kb):
    verified, partial = fact_numbers()
    assert "6173705023" in verified and "8008987180" in verified      # the parser works
    assert "8883514024" not in verified | partial                      # UNVERIFIED ERO line
    assert "6176294731" not in verified | partial                      # struck-through number
    for entry in real_kb.entries.values():
        for lang, tr in entry.translations.items():
            for number in PHONE.findall(to_plain(tr.answer)):
                d = digits(number)
                assert d in verified | partial, f"{entry.id} [{lang}]: {number} is not VERIFIED in facts.md"
                if d in partial:   # PARTIAL numbers only with a review date, so staff re-check them
                    assert entry.review_by, f"{entry.id}: PARTIAL number {number} needs review_by"


@needs_shared
def test_ui_contacts_are_verified(real_kb):
    from bot import contacts

    verified, _ = fact_numbers()
    assert digits(contacts.LUCE_HOTLINE) in verified


def test_ices_tip_line_appears_nowhere():
    for folder in ("knowledge", "locales", "bot"):
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and path.suffix in {".yaml", ".po", ".py", ".md"}:
                assert not TIP_LINE.search(path.read_text(encoding="utf-8")), path


def test_time_sensitive_entries_have_a_review_date(real_kb):
    # anything citing the 2025 ICE memo, pending bills or 287(g) counts is time-sensitive
    sensitive = re.compile(r"\bPROTECT\b|\b[Mm]emo(rando|rándum)?\b|287\(g\)|H\.5316|S\.3072")
    for entry in real_kb.entries.values():
        if sensitive.search(entry.text("en").answer):
            assert entry.review_by, f"{entry.id} cites time-sensitive facts without review_by"


def test_no_answer_claims_a_bill_is_law(real_kb):
    claims = re.compile(r"PROTECT Act (is|became) (now )?(a )?law|Safe Communities Act (is|became) law", re.I)
    for entry in real_kb.entries.values():
        assert not claims.search(entry.text("en").answer), entry.id


def test_no_promise_that_ice_can_never_enter(real_kb):
    promise = re.compile(r"ICE (can|may) never (enter|come in)|never enter your home", re.I)
    for entry in real_kb.entries.values():
        assert not promise.search(entry.text("en").answer), entry.id


def test_answers_are_the_same_help_in_every_language(real_kb):
    """Haitian Creole, Portuguese and Spanish readers get the same contacts and links."""
    link = re.compile(r"[a-z0-9.-]+\.(?:gov|org|com)(?:/[\w/-]*)?", re.I)
    for entry in real_kb.entries.values():
        reference = entry.text("en").answer
        numbers = {digits(n) for n in PHONE.findall(reference)}
        links = {l.lower().rstrip("/") for l in link.findall(reference)}
        for lang in ("pt", "es", "ht"):
            answer = entry.text(lang).answer
            assert {digits(n) for n in PHONE.findall(answer)} == numbers, f"{entry.id} [{lang}] numbers"
            assert {l.lower().rstrip("/") for l in link.findall(answer)} == links, f"{entry.id} [{lang}] links"
