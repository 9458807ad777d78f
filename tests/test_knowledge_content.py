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


def fact_numbers(lines=None):
    """Numbers in facts.md by status: a line's VERIFIED/PARTIAL tag vouches for its numbers;
    numbers on UNVERIFIED-only lines, and struck-through ones, are not allowed."""
    verified, partial = set(), set()
    if lines is None:
        lines = (SHARED / "facts.md").read_text(encoding="utf-8").splitlines()
    for line in lines:
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


# issue 11: entries the outline does not list yet, held to a higher floor of phrasings
NEW_IDS = ["tps-and-parole", "ice-check-ins", "expedited-removal", "public-charge", "crime-victims",
           "other-immigration-questions"]


@needs_shared
def test_every_outline_entry_exists_complete(real_kb):
    ids = outline_ids()
    assert len(ids) >= 29
    for entry_id, floor in [(i, 8) for i in ids] + [(i, 12) for i in NEW_IDS]:
        assert entry_id in real_kb.entries, f"missing outline entry {entry_id}"
        entry = real_kb.entries[entry_id]
        assert entry.sources, f"{entry_id}: no source"
        assert entry.reviewed is not None
        for lang in LANGUAGES:
            tr = entry.text(lang)
            assert len(tr.questions) >= floor, f"{entry_id} [{lang}]: {len(tr.questions)} questions"
            assert tr.title and tr.answer


@needs_shared
def test_every_phone_number_is_verified_in_facts(real_kb):
    verified, partial = fact_numbers()
    assert "6173705023" in verified and "8008987180" in verified      # the parser works
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
    # the 2025 ICE memo, pending bills, 287(g) counts, budget lines, Haiti TPS and CHNV parole,
    # expedited removal and public charge change fast (facts.md ⏳): re-check within 60 days
    sensitive = re.compile(r"\bPROTECT\b|\b[Mm]emo(rando|rándum)?\b|287\(g\)|H\.5316|S\.3072|HD 5610"
                           r"|\bFY2?[67]\b|\bTPS\b|\bCHNV\b|[Ee]xpedited removal|[Pp]ublic[- ]charge")
    for entry in real_kb.entries.values():
        if sensitive.search(entry.text("en").answer):
            assert entry.review_by, f"{entry.id} cites time-sensitive facts without review_by"
            assert (entry.review_by - entry.reviewed).days <= 60, \
                f"{entry.id}: review_by {entry.review_by} is more than 60 days after reviewed"


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


# -- sources: only what facts.md lists -------------------------------------------------------------

FACTS_URL = re.compile(r"(?:https?://)?(?:[\w-]+\.)+[a-z]{2,}(?:/[^\s\]]*)?", re.I)


def norm_url(url: str) -> str:
    """Compare addresses without scheme, "www.", host case or a trailing slash."""
    url = re.sub(r"^https?://", "", url.strip(), flags=re.I)
    url = re.sub(r"^www\.", "", url, flags=re.I)
    host, _sep, rest = url.partition("/")
    return (host.lower() + ("/" + rest if rest else "")).rstrip("/")


def facts_urls(text=None):
    text = (SHARED / "facts.md").read_text(encoding="utf-8") if text is None else text
    return {norm_url(m.group(0).rstrip(").,;:*")) for m in FACTS_URL.finditer(text)}


def unlisted_sources(kb, listed):
    return [f"{e.id}: {s}" for e in kb.entries.values() for s in e.sources if norm_url(s) not in listed]


def test_source_matching_rules():
    listed = facts_urls("[source: GBH — https://www.wgbh.org/news/a-b ; bare — dailyfreepress.com/?p=1 ;"
                        " (copy at http://x.example.org/p).]")
    assert norm_url("http://wgbh.org/news/a-b/") in listed and norm_url("https://dailyfreepress.com/?p=1") in listed
    assert norm_url("https://x.example.org/p") in listed
    assert norm_url("https://www.wgbh.org/news") not in listed       # a parent page is not the source
    assert norm_url("https://redlib.ancientvale.net/r/Mass50501") not in listed


@needs_shared
def test_every_source_is_listed_in_facts(real_kb):
    """Staff check an answer against its sources: each must be an address facts.md gives."""
    bad = unlisted_sources(real_kb, facts_urls())
    assert not bad, "sources that facts.md does not list:\n" + "\n".join(bad)


# -- section 5 of facts.md: things the bot must not say, where a pattern can catch them ----------------

NEGATION = {
    "en": r"\b(?:not|never|no|cannot|nobody|no one|neither)\b|n't\b",
    "pt": r"\b(?:não|nao|nunca|nem|ninguém|jamais)\b",
    "es": r"\b(?:no|nunca|ni|nadie|jamás|tampoco)\b",
    "ht": r"\b(?:pa|poko|okenn|janm|pyès)\b",
}


def sentences(html: str):
    """Clauses of an answer: split at sentence ends, line breaks, bullets and semicolons."""
    return [c for c in re.split(r"[.!?](?=\s|$)|[\n•;]", to_plain(html)) if c.strip()]


def claims(text: str, lang: str, claim: str, *, near: str | None = None, negation: str | None = None,
           window: int = 40):
    """Clauses of `text` that make `claim` (and mention `near`, if given) with no negation in the
    `window` characters before the claim."""
    neg = re.compile(negation or NEGATION[lang], re.I)
    found = []
    for clause in sentences(text):
        if near and not re.search(near, clause, re.I):
            continue
        for m in re.finditer(claim, clause, re.I):
            if not neg.search(clause[max(0, m.start() - window):m.start()]):
                found.append(clause.strip())
    return found


def answers(kb):
    for entry in kb.entries.values():
        for lang in LANGUAGES:
            yield entry.id, lang, entry.text(lang).answer


def catalog_strings():
    from babel.messages.pofile import read_po
    for lang in LANGUAGES:
        with open(ROOT / "locales" / lang / "LC_MESSAGES" / "messages.po", "rb") as fp:
            for message in read_po(fp, locale=lang):
                if not message.id:
                    continue
                ids = (message.id,) if isinstance(message.id, str) else tuple(message.id)
                strings = (message.string,) if isinstance(message.string, str) else tuple(message.string)
                for k, string in enumerate(strings):   # every plural form (ngettext) is read too
                    yield lang, ids[min(k, len(ids) - 1)], string


ER = {"en": r"emergency (?:room|department|care|services?)|\bER\b", "pt": r"pronto[- ]socorro|emergência",
      "es": r"emergencias?|urgencias", "ht": r"ijans"}
FREE = {"en": r"\bfree\b(?! to\b)|free of charge|at no cost", "pt": r"gr[aá]tis|gratuit[oa]s?|de graça",
        "es": r"\bgratis\b|gratuit[oa]s?", "ht": r"\bgratis\b|gratuit\w*|san peye"}


def test_emergency_care_is_never_called_free(real_kb):
    """5.18: EMTALA guarantees screening and stabilisation, not free care."""
    bad = [(i, lang, c) for i, lang, text in answers(real_kb)
           for c in claims(text, lang, FREE[lang], near=ER[lang])]
    assert "health-care" in real_kb.entries
    assert not bad, bad


MONTHS = {
    "en": r"January|February|March|April|(?-i:May)|June|July|August|September|October|November|December",
    "pt": r"janeiro|fevereiro|março|abril|maio|junho|julho|agosto|setembro|outubro|novembro|dezembro",
    "es": r"enero|febrero|marzo|abril|mayo|junio|julio|agosto|septiembre|setiembre|octubre|noviembre|diciembre",
    "ht": r"janvye|fevriye|mas|avril|me|jen|jiyè|out|septanm|oktòb|novanm|desanm",
}
ENDS = {
    "en": r"end|ends|ended|ending|expires?|expired|terminates?|terminated|stops?|stopped|until|through|lasts",
    "pt": r"termina|terminou|acaba|acabou|encerra|encerrou|vence|venceu|expira|expirou|até|vale até|deixa de valer",
    "es": r"termina|terminó|acaba|acabó|vence|venció|expira|expiró|hasta|finaliza|finalizó",
    "ht": r"fini|ekspire|jiska|jouk|sispann|kanpe|bout",
}


def tps_end_dates(text: str, lang: str):
    date = rf"(?:{MONTHS[lang]}|20[2-3]\d|\d{{1,2}}/\d{{1,2}})"
    end = rf"(?:{ENDS[lang]})"
    claim = rf"\b{end}\b[^.;\n]{{0,30}}?\b{date}\b|\b{date}\b[^.;\n]{{0,15}}?\b{end}\b"
    return claims(text, lang, claim, near=r"\bTPS\b", negation=r"(?!x)x")


def test_no_end_date_next_to_tps(real_kb):
    """0.5, 5.26: Haiti TPS is in flux after June 25, 2026; the bot gives no end date."""
    assert tps_end_dates("Haiti TPS ends on August 3, 2025.", "en")              # the check works
    assert tps_end_dates("O TPS do Haiti termina em 3 de fevereiro de 2026.", "pt")
    assert not tps_end_dates("On June 25, 2026 the Supreme Court allowed the government to end TPS.", "en")
    bad = [(i, lang, c) for i, lang, text in answers(real_kb) for c in tps_end_dates(text, lang)]
    assert not bad, bad
    tps = real_kb.entries["tps-and-parole"]
    for lang in LANGUAGES:
        assert "uscis.gov" in tps.text(lang).answer, f"tps-and-parole [{lang}] must point to USCIS"


CHAT = {"en": r"\b(?:chats?|conversations?|messages?|bot|Telegram)\b",
        "pt": r"\b(?:conversas?|chats?|mensage(?:m|ns)|bot|Telegram)\b",
        "es": r"\b(?:chats?|conversaci[oó]n(?:es)?|mensajes?|bot|Telegram)\b",
        "ht": r"\b(?:chat|konv[eè]sasyon|mesaj|bot|Telegram)\b"}
SECRET = {"en": r"\b(?:private|encrypted|encryption)\b",
          "pt": r"\b(?:privad[oa]s?|criptograf\w*|cifrad[oa]s?|encriptad[oa]s?)\b",
          "es": r"\b(?:privad[oa]s?|cifrad[oa]s?|encriptad[oa]s?|cifrado)\b",
          "ht": r"(?<!vi )\bprive\b|\bchifre\b|\bankripte\b"}


def chat_called_secret(text: str, lang: str):
    return claims(text, lang, SECRET[lang], near=CHAT[lang], window=30)


def test_the_chat_is_never_called_private_or_encrypted(real_kb):
    """0.6, 5.29: chats with the bot are Telegram cloud chats, received by the bot's operators."""
    assert chat_called_secret("Your chat with this bot is private.", "en")
    assert not chat_called_secret("This chat is not end-to-end encrypted.", "en")
    assert not chat_called_secret("Vi prive w: bot la kenbe chat id ou.", "ht")
    bad = [(i, lang, c) for i, lang, text in answers(real_kb) for c in chat_called_secret(text, lang)]
    bad += [("catalog", lang, c) for lang, msgid, msgstr in catalog_strings()
            for c in chat_called_secret(msgstr, lang) + (chat_called_secret(msgid, "en") if lang == "en" else [])]
    assert not bad, bad


ACTS = r"(?:PROTECT Act|Safe Communities Act|Immigrant Legal Defense Act)(?: la)?"
BILL_IS_LAW = {
    "en": rf"{ACTS} (?:is|became|has become) (?:now )?(?:a |the )?law\b|{ACTS} (?:is|went) (?:now )?in(?:to)? (?:effect|force)",
    "pt": rf"{ACTS} (?:já )?(?:é|virou|se tornou|passou a ser) (?:uma )?lei\b|{ACTS} (?:já )?(?:está|entrou) em vigor",
    "es": rf"{ACTS} (?:ya )?(?:es|se convirtió en|pasó a ser) (?:una )?ley\b|{ACTS} (?:ya )?(?:está|entró) en vigor",
    "ht": rf"{ACTS} (?:deja )?(?:se|vin|tounen) (?:yon )?lwa\b|{ACTS} (?:deja )?an aplikasyon",
}


def test_no_answer_claims_a_bill_is_law(real_kb):
    """0.2, 5.16: whether the PROTECT Act became law is not confirmed."""
    assert claims("The PROTECT Act is law since August.", "en", BILL_IS_LAW["en"])
    assert not claims("Nou PA ka konfime PROTECT Act la vin lwa.", "ht", BILL_IS_LAW["ht"])
    bad = [(i, lang, c) for i, lang, text in answers(real_kb) for c in claims(text, lang, BILL_IS_LAW[lang])]
    assert not bad, bad


COURT = {"en": r"immigration court", "pt": r"(?:tribunal|corte) de imigração",
         "es": r"corte de inmigración|tribunal de inmigración", "ht": r"tribinal imigrasyon"}
FREE_LAWYER = {"en": r"\bfree (?:immigration )?(?:lawyer|attorney)s?\b|\b(?:lawyer|attorney) for free\b",
               "pt": r"\badvogad[oa]s? (?:de graça|gratuit[oa]s?|grátis)",
               "es": r"\babogad[oa]s? (?:gratis|gratuit[oa]s?|de oficio)",
               "ht": r"\bavoka gratis\b"}


def test_no_free_lawyer_promised_in_immigration_court(real_kb):
    """5.4: no appointed lawyer is guaranteed in immigration court."""
    assert claims("Immigration court gives you a free lawyer.", "en", FREE_LAWYER["en"], near=COURT["en"])
    bad = [(i, lang, c) for i, lang, text in answers(real_kb)
           for c in claims(text, lang, FREE_LAWYER[lang], near=COURT[lang], window=45)]
    assert not bad, bad


SIGN_DEPARTURE = {"en": r"\bsign\b[^.;\n]{0,50}voluntary departure",
                  "pt": r"\bassin\w*\b[^.;\n]{0,50}saída voluntária",
                  "es": r"\bfirm\w*\b[^.;\n]{0,50}salida voluntaria",
                  "ht": r"\bsiyen\b[^.;\n]{0,50}(?:depa volontè|kite peyi a volontèman|voluntary departure)"}


def test_never_advises_signing_voluntary_departure(real_kb):
    """5.12: do not sign anything, such as voluntary departure, without a lawyer."""
    assert claims("Sign the voluntary departure form to get out faster.", "en", SIGN_DEPARTURE["en"])
    assert not claims("Do not sign anything, such as voluntary departure, without a lawyer.", "en",
                      SIGN_DEPARTURE["en"])
    bad = [(i, lang, c) for i, lang, text in answers(real_kb)
           for c in claims(text, lang, SIGN_DEPARTURE[lang], window=25)]
    assert not bad, bad


NO_RISK = {"en": r"\bno (?:immigration )?risk\b|\bwithout (?:any )?(?:immigration )?risk\b"
                 r"|\b(?:can|will) never (?:get you deported|lead to (?:deportation|immigration consequences))",
           "pt": r"\b(?:nenhum|sem) risco\b|\bnunca (?:vai )?(?:levar|causar|resultar)\w* (?:a |à |em )?(?:sua )?deporta",
           "es": r"\b(?:ningún|sin) riesgo\b|\bnunca (?:lo )?(?:va a )?(?:llevar|causar)\w* (?:a )?(?:la )?deportaci",
           "ht": r"\b(?:okenn|san) risk\b|\bpa janm (?:ka )?(?:fè yo depòte|mennen nan depòtasyon)"}
CANT_PROMISE = {"en": r"\b(?:no one|nobody|cannot|can't|not|never)\b[^.]{0,20}\b(?:promise|guarantee)",
                "pt": r"\b(?:ninguém|não)\b[^.]{0,20}\b(?:prometer|garantir|promete|garante)",
                "es": r"\b(?:nadie|no)\b[^.]{0,20}\b(?:prometer|garantizar|promete|garantiza)",
                "ht": r"\b(?:pèsonn|pa)\b[^.]{0,20}\b(?:pwomèt|garanti)"}


def test_reporting_a_crime_is_never_called_risk_free(real_kb):
    """5.30: never promise that reporting a crime carries no immigration risk."""
    assert claims("Reporting a crime carries no immigration risk.", "en", NO_RISK["en"],
                  negation=CANT_PROMISE["en"], window=200)
    bad = [(i, lang, c) for i, lang, text in answers(real_kb)
           for c in claims(text, lang, NO_RISK[lang], negation=CANT_PROMISE[lang], window=200)]
    assert not bad, bad


MYTHS = [
    (r"\b1[,.]?098\b", "5.15: the '1,098 agreements as of October 20' figure is UNVERIFIED"),
    (r"\b(?:nearly|almost|quase|casi|prèske) 80 ?%", "5.15: say 'about 78% ... no criminal conviction'"),
    (r"Massachusetts (?:is|é|es|se) (?:a |um |un |yon )?(?:sanctuary state|estado santu[aá]rio|eta sanktyè)",
     "5.5: no statewide sanctuary law is confirmed"),
    (r"expedited removal (?:is|remains|is still|has been) (?:blocked|stopped|on hold)"
     r"|(?:deportação|remoção) (?:rápida|acelerada)[^.;\n]{0,20}\b(?:está|continua|segue) (?:bloquead|suspens)"
     r"|(?:deportación|expulsión) (?:rápida|expedita|acelerada)[^.;\n]{0,20}\b(?:está|sigue) (?:bloquead|suspendid)"
     r"|depòtasyon rapid[^.;\n]{0,20}\b(?:toujou bloke|bloke kounye a)",
     "5.27: the 2026 appeals ruling reportedly lifted the block"),
]


@pytest.mark.parametrize("pattern, why", MYTHS, ids=[w.split(":")[0] for _p, w in MYTHS])
def test_no_section_5_myth(real_kb, pattern, why):
    bad = [(i, lang, c) for i, lang, text in answers(real_kb) for c in claims(text, lang, pattern)]
    assert not bad, f"{why}: {bad}"


SSN = {"en": r"Social Security(?: number)?|\bSSN\b", "pt": r"Social Security|\bSSN\b|Seguro Social",
       "es": r"Seguro Social|Social Security|\bSSN\b", "ht": r"Sekirite Sosyal|Social Security|\bSSN\b|nimewo sosyal"}
REQUIRE = {"en": r"\b(?:require[sd]?|must (?:give|provide|show))\b", "pt": r"\b(?:exig\w*|obrigatóri\w*)",
           "es": r"\b(?:exig\w*|obligatori\w*)", "ht": r"\b(?:egzije|obligatwa)\b"}


def test_schools_are_never_said_to_require_a_social_security_number(real_kb):
    """5.20: schools may ask for an SSN but cannot refuse enrolment without one."""
    assert claims("Schools require a Social Security number.", "en", REQUIRE["en"], near=SSN["en"])
    bad = [(i, lang, c) for i, lang, text in answers(real_kb)
           for c in claims(text, lang, REQUIRE[lang], near=SSN[lang])]
    assert not bad, bad
