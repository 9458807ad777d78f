"""The trained matcher: decisions, long messages, urgency, teaching, retraining, the model cache."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from auxil.kb_fixtures import entry_data, write_entry
from auxil.transcript import Conversation
from bot import contacts
from bot.engine import Engine, Knowledge
from bot.knowledge import load_knowledge
from bot.matcher import Matcher
from bot.nlu import model as nlu_model
from bot.nlu.decision import Thresholds, choose_thresholds
from bot.nlu.model import ModelCache
from bot.nlu.segments import question_sentence, sentences
from bot.nlu.urgency import is_urgent
from bot.reloader import reload_knowledge
from bot.storage import Database
from bot.teach import teach

ROOT = Path(__file__).resolve().parent.parent


# -- the decision -------------------------------------------------------------------------------

def test_thresholds_keep_wrong_answers_within_the_budget():
    # 100 in-scope texts: the top candidate is right for those with confidence >= 0.6, wrong below.
    best = np.linspace(0.01, 0.99, 100)
    right = best >= 0.6
    offtopic = np.zeros(100, dtype=bool)
    t = choose_thresholds(best, np.zeros(100), right, offtopic, max_wrong=0.05, max_offtopic=1.0)
    answered = best >= t.answer
    assert (answered & ~right).sum() <= 5            # at most 5% of 100 texts answered wrong
    assert t.answer <= 0.60                          # ... and not stricter than it needs to be
    assert t.cv_wrong <= 0.05 and t.cv_top1 == pytest.approx(right.mean(), abs=0.01)


def test_thresholds_keep_offtopic_out_of_answers():
    best = np.array([0.9] * 80 + [0.7] * 20)        # 20 off-topic texts at 0.7
    offtopic = np.array([False] * 80 + [True] * 20)
    t = choose_thresholds(best, np.zeros(100), ~offtopic, offtopic, max_wrong=0.05, max_offtopic=0.05)
    assert 0.7 < t.answer <= 0.9
    assert t.suggest <= 0.45 and t.suggest <= t.answer


def _matcher_with(thresholds: Thresholds, knowledge) -> Matcher:
    m = object.__new__(Matcher)
    m.thresholds = thresholds
    return m


def test_decide_answers_suggests_or_falls_back(knowledge):
    m = _matcher_with(Thresholds(answer=0.8, margin=0.1, suggest=0.3), knowledge)
    answered = m._decide([("warrants", 0.9), ("ice-at-home", 0.5)])
    assert (answered.outcome, answered.entry) == ("answer", "warrants")
    near_tie = m._decide([("warrants", 0.85), ("ice-at-home", 0.8), ("ice-tricks", 0.2)])
    assert near_tie.outcome == "suggest" and near_tie.suggestions == ["warrants", "ice-at-home"]
    unsure = m._decide([("warrants", 0.5), ("ice-at-home", 0.4)])
    assert unsure.outcome == "suggest" and unsure.entry is None
    assert m._decide([("warrants", 0.2)]).outcome == "none"


# -- long messages ------------------------------------------------------------------------------

def test_sentences_and_the_question_in_them():
    text = ("My husband went to work at 6am. His boss called me at 9.\nThey say ICE took him! "
            "Where can I find him?")
    parts = sentences(text)
    assert parts == ["My husband went to work at 6am.", "His boss called me at 9.", "They say ICE took him!",
                     "Where can I find him?"]
    assert question_sentence(parts) == "Where can I find him?"
    assert question_sentence(["meu marido foi preso", "onde ele esta agora"]) == "onde ele esta agora"
    assert question_sentence(["He is gone.", "No one knows."]) is None
    assert len(sentences(". ".join(f"Sentence {k}" for k in range(40)))) == 12   # the rest joined, kept


@pytest.mark.parametrize("lang,text,expect", [
    ("en", "I live in Brockton with my two kids and I work nights cleaning offices. Yesterday my "
           "brother was picked up by ICE outside his building in Lynn and his phone is off. Nobody "
           "tells us anything. How do we find out where they are holding him?", "find-detained-person"),
    ("pt", "Moro em Framingham faz 6 anos e trabalho com limpeza. Meu patrão não paga minhas horas "
           "extras faz dois meses e diz que se eu reclamar chama a imigração. Ele pode fazer isso? "
           "O que eu faço?", "workers-rights"),
])
def test_a_long_story_is_answered_from_its_question(engine, lang, text, expect):
    r = engine.ask(text)
    assert r.language == lang
    assert r.match.outcome in ("answer", "suggest")
    assert (r.match.entry or r.match.suggestions[0]) == expect


def test_a_very_long_message_is_read_and_says_what_was_read(engine):
    story = "I am very worried and I do not know what to do. " * 100   # 4,900 characters
    r = engine.ask(story + " ICE agents are knocking at my door right now, do I have to open?")
    assert r.match.truncated
    assert "only its beginning" in r.replies[-1].text


# -- urgency ------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "HELP ICE HERE", "help", "help me please", "they are taking my husband", "ice is outside rn",
    "socorro socorro", "socoro", "o ICE ta aqui na porta", "estao levando meu marido agora",
    "ayuda", "ayudenme por favor", "la migra esta aqui", "se lo llevan a mi esposo",
    "anmwe", "ede m souple", "ICE la a kounya", "yo pran mari m",
])
def test_danger_now_is_urgent_in_four_languages(text):
    assert is_urgent(text)


@pytest.mark.parametrize("text", [
    "how can i help the campaign", "what are my rights at work", "como posso ajudar a campanha",
    "quiero ayudar como voluntario en la campaña", "kijan m ka ede kanpay la", "ICE",
])
def test_ordinary_questions_are_not_urgent(text):
    assert not is_urgent(text)


@pytest.mark.parametrize("text,lang", [
    ("HELP ICE HERE", "en"), ("socorro socorro", "pt"), ("ayuda por favor", "es"), ("anmwe", "ht"),
])
def test_a_cry_for_help_gets_the_hotline_first(engine, text, lang):
    chat = Conversation(engine)
    chat.say(text)
    assert contacts.LUCE_HOTLINE in chat.last.replies[0].text and "911" in chat.last.replies[0].text
    assert chat.last.match.urgent


def test_urgent_and_matched_gets_both_in_the_first_reply(engine):
    chat = Conversation(engine)
    chat.say("ICE agents are banging on my door right now, do i have to open it")
    first = chat.last.replies[0].text
    assert first.startswith("<b>🚨") and contacts.LUCE_HOTLINE in first and "911" in first
    assert chat.entry == "ice-at-home" or "ice-at-home" in chat.last.match.suggestions


def test_a_calm_question_has_no_emergency_banner(engine):
    r = engine.ask("how do i contact my state representative")
    assert not r.match.urgent and not r.replies[0].text.startswith("<b>🚨")


# -- training, cache, teaching, retraining --------------------------------------------------------

@pytest.fixture
def small_kb_dir(tmp_path):
    root = tmp_path / "knowledge"
    write_entry(root, entry_data("bananas", "bananas"))
    write_entry(root, entry_data("tractors", "tractors", category="help"))
    return root


def test_a_trained_model_is_cached_by_content(small_kb_dir, tmp_path, monkeypatch):
    kb, _ = load_knowledge(small_kb_dir)
    cache_dir = tmp_path / "cache"
    first = Matcher(kb, ModelCache(cache_dir))
    assert len(list(cache_dir.glob("model-*.pickle"))) == 1

    def no_training(*_a, **_k):
        raise AssertionError("trained again although the phrasings did not change")
    monkeypatch.setattr(nlu_model, "train", no_training)
    again = Matcher(kb, ModelCache(cache_dir))          # a new process: from the file
    assert again.model.key == first.model.key
    assert again.match("i need bananas", "en").entry == "bananas"


def test_teach_adds_the_question_and_the_retrained_bot_answers_it(small_kb_dir, tmp_path):
    kb, _ = load_knowledge(small_kb_dir)
    engine = Engine(Knowledge(kb, Matcher(kb, ModelCache())), Database(tmp_path / "bot.sqlite3"),
                    knowledge_dir=small_kb_dir)
    question = "the yellow curved fruit from the market"
    result = teach(small_kb_dir, "bananas", question, "en")
    assert result.ok, result.message
    assert question in (small_kb_dir / "rights" / "bananas.yaml").read_text()
    assert reload_knowledge(engine, small_kb_dir).ok
    assert question in engine.knowledge.kb.entries["bananas"].text("en").examples
    assert engine.knowledge.matcher.match(question, "en").ranking[0][0] == "bananas"
    # the same question for another entry is refused, the file unchanged
    before = (small_kb_dir / "help" / "tractors.yaml").read_text()
    refused = teach(small_kb_dir, "tractors", question, "en")
    assert not refused.ok and "bananas" in refused.message
    assert (small_kb_dir / "help" / "tractors.yaml").read_text() == before


def test_teach_from_report_buttons_for_editors(small_kb_dir, tmp_path):
    kb, _ = load_knowledge(small_kb_dir)
    db = Database(tmp_path / "bot.sqlite3")
    engine = Engine(Knowledge(kb, Matcher(kb, ModelCache())), db, admin_ids=frozenset({7}),
                    knowledge_dir=small_kb_dir)
    db.record_unanswered("where do i buy a red combine harvester", "en", "none")
    outsider = Conversation(engine, user_id=8)
    outsider.say("/report")
    assert "Questions without an answer" not in outsider.text
    editor = Conversation(engine, user_id=7)
    editor.say("/report")
    editor.press("#1")
    assert "red combine harvester" in editor.text
    editor.press_data(next(b.data for b in editor.buttons() if b.data.startswith("t:") and "tractors" in b.data))
    assert "Added to tractors [en]" in editor.text
    assert "red combine harvester" in (small_kb_dir / "help" / "tractors.yaml").read_text()
    assert db.unanswered_since(__import__("datetime").date(2000, 1, 1)) == []
    # someone without the role pressing a forged teach button changes nothing
    before = (small_kb_dir / "help" / "tractors.yaml").read_text()
    outsider.press_data("t:1:tractors@en")
    assert (small_kb_dir / "help" / "tractors.yaml").read_text() == before


def test_a_failed_retrain_keeps_the_model_that_works(small_kb_dir, tmp_path, monkeypatch):
    kb, _ = load_knowledge(small_kb_dir)
    engine = Engine(Knowledge(kb, Matcher(kb, ModelCache())), Database(tmp_path / "bot.sqlite3"),
                    knowledge_dir=small_kb_dir)
    old = engine.knowledge
    assert teach(small_kb_dir, "bananas", "a bunch of ripe ones please", "en").ok

    def broken_training(*_a, **_k):
        raise MemoryError("no memory left for training")
    monkeypatch.setattr(nlu_model, "train", broken_training)
    monkeypatch.setattr("bot.matcher._DEFAULT_CACHE", ModelCache())
    result = reload_knowledge(engine, small_kb_dir)
    assert not result.ok and "training the matcher failed" in str(result.errors[-1])
    assert engine.knowledge is old
    assert engine.ask("i need bananas").match.entry == "bananas"


def test_kb_teach_command(small_kb_dir):
    import subprocess
    import sys
    run = subprocess.run([sys.executable, "main.py", "kb", "teach", "--dir", str(small_kb_dir), "tractors",
                          "preciso de um trator vermelho pra fazenda", "--lang", "pt"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "Added to tractors [pt]" in run.stdout
    kb, issues = load_knowledge(small_kb_dir)
    assert "preciso de um trator vermelho pra fazenda" in kb.entries["tractors"].text("pt").examples
    bad = subprocess.run([sys.executable, "main.py", "kb", "teach", "--dir", str(small_kb_dir), "nothing-here",
                          "a question", "--lang", "en"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "no entry 'nothing-here'" in bad.stderr


def test_real_knowledge_base_meets_the_training_floor(real_kb):
    """At least 40 phrasings and 5 long messages per entry and language. (The share of situations
    is a word heuristic, reported by kb check as a warning, not asserted here.)"""
    from bot.knowledge import MIN_LONG, MIN_PHRASINGS
    from bot.nlu.segments import sentence_count

    short = [f"{entry.id} [{lang}]: {len(tr.phrasings)}"
             for entry in real_kb.entries.values() for lang, tr in entry.translations.items()
             if len(tr.phrasings) < MIN_PHRASINGS or sum(sentence_count(q) >= 2 for q in tr.phrasings) < MIN_LONG]
    assert not short, short


def test_no_reporting_set_question_is_a_knowledge_base_phrasing(real_kb):
    """The benchmark's reporting set stays held out: none of its questions is taught to the bot.
    (Titles are left out: an entry's name, "Immigrant Legal Defense Act", is also a fair question.)"""
    import re

    import yaml

    from bot.text import normalize

    current = re.search(r'CURRENT_SET = "([^"]+)"', (ROOT / "bench" / "quality.py").read_text()).group(1)
    reporting = {normalize(q["text"]) for q in yaml.safe_load((ROOT / "bench" / "data" / current).read_text())}
    assert len(reporting) >= 400
    taught = [(e.id, lang, p) for e in real_kb.entries.values() for lang, tr in e.translations.items()
              for p in (*tr.phrasings, *tr.keywords) if normalize(p) in reporting]
    assert not taught, taught


def test_a_large_knowledge_base_uses_the_centroid_ranker(monkeypatch, small_kb_dir):
    """Above MAX_REGRESSION_LABELS entries the linear ranker is a nearest-centroid model that
    trains in one pass; it still ranks the right entry first."""
    from bot.nlu import rankers

    monkeypatch.setattr(rankers, "MAX_REGRESSION_LABELS", 1)
    kb, _ = load_knowledge(small_kb_dir)
    m = Matcher(kb, ModelCache())
    assert isinstance(m.model.rankers.linear.model, rankers._Centroids)
    assert m.match("tell me about tractors please", "en").ranking[0][0] == "tractors"
    assert m.match("preciso de bananas", "pt").ranking[0][0] == "bananas"


def test_a_message_asking_two_things_answers_one_and_offers_the_other(engine):
    chat = Conversation(engine)
    chat.say("My boss has not paid me for three weeks of overtime at the restaurant. And another "
             "thing: how do I find my brother, ICE took him yesterday in Lynn?")
    assert chat.outcome == "answer"
    asked = {"find-detained-person", "workers-rights"}
    assert chat.entry in asked
    other = (asked - {chat.entry}).pop()
    assert chat.last.match.also == [other]
    plus = chat.button("➕")
    assert plus.data.startswith(f"a:{other}@")
    chat.press("➕")
    assert chat.entry is None and engine.knowledge.kb.entries[other].text("en").title in chat.text


@pytest.mark.parametrize("text,expect", [
    ("imigrasao batendu na porrta", "ice-at-home"),                 # every key word misspelt (pt)
    ("polisia me paro manejanddo", "stopped-in-car"),               # (es)
    ("avogado gratuiito imigrasao", "legal-help"),                  # (pt)
    ("detaine locater", "find-detained-person"),                    # (en)
])
def test_misspelt_key_words_still_find_the_entry(knowledge, text, expect):
    """Character n-grams carry these: with word features alone each one ranks another entry first."""
    lang = knowledge.matcher.detector.detect(text).language
    r = knowledge.matcher.match(text, lang)
    assert r.ranking[0][0] == expect and r.outcome in ("answer", "suggest")


def test_chat_abbreviations_are_expanded_for_the_model():
    from bot.nlu.features import model_text

    assert model_text("vc ta aqui? oq eu faço", "pt") == "voce esta aqui o que eu faco"
    assert model_text("m pa konn kisa pou m fe", "ht") == "mwen pa konn kisa pou mwen fe"
    assert model_text("pls help me rn", "en").startswith("please help me")
