"""The YAML loader: valid files load; every kind of mistake is named with file and line."""

import datetime as dt

from auxil.kb_fixtures import entry_data, write_entry

from bot.knowledge import load_knowledge


def load(root, **kw):
    kb, issues = load_knowledge(root, today=kw.get("today", dt.date(2026, 11, 25)))
    return kb, [i for i in issues if i.level == "error"], [i for i in issues if i.level == "warning"]


def test_valid_entries_load(tmp_path):
    write_entry(tmp_path, entry_data("bananas", "bananas"))
    write_entry(tmp_path, entry_data("tractors", "tractors", category="help"))
    kb, errors, warnings = load(tmp_path)
    assert errors == []
    # 8 questions and no examples: below the matcher's training floor, a warning per language
    assert sorted((w.entry, w.lang) for w in warnings) == sorted(
        (e, lang) for e in ("bananas", "tractors") for lang in ("en", "pt", "es", "ht"))
    assert all("phrasings" in w.message and "examples:" in w.message for w in warnings)
    assert sorted(kb.entries) == ["bananas", "tractors"]
    entry = kb.entries["bananas"]
    assert entry.category == "rights"
    assert entry.reviewed == dt.date(2026, 11, 25)
    assert entry.text("ht").title == "bananas (ht)"
    assert len(entry.text("pt").questions) == 8


def test_training_floor_met_gives_no_warning(tmp_path):
    data = entry_data("bananas", "bananas")
    for lang in ("en", "pt", "es", "ht"):
        data[lang]["examples"] = (
            [f"my neighbour told me about bananas and i worry about it number {k}" for k in range(22)]
            + [f"I live in town {k}. My cousin asked about bananas today." for k in range(10)])
    write_entry(tmp_path, data)
    kb, errors, warnings = load(tmp_path)
    assert errors == [] and warnings == []
    assert len(kb.entries["bananas"].text("es").phrasings) == 40


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = write_entry(tmp_path, entry_data("bananas", "bananas"))
    lines = path.read_text().splitlines()
    lines[5] = lines[5] + ' "unclosed'
    path.write_text("\n".join(lines))
    kb, errors, _ = load(tmp_path)
    assert "bananas" not in kb.entries
    assert len(errors) == 1
    assert "YAML syntax error" in errors[0].message
    assert errors[0].file.endswith("rights/bananas.yaml")
    assert errors[0].line is not None and 5 <= errors[0].line <= 8


def test_missing_language(tmp_path):
    data = entry_data("bananas", "bananas")
    del data["ht"]
    write_entry(tmp_path, data)
    kb, errors, _ = load(tmp_path)
    assert "bananas" not in kb.entries
    assert [(e.entry, e.lang) for e in errors] == [("bananas", "ht")]
    assert "missing" in errors[0].message


def test_unknown_and_missing_fields(tmp_path):
    data = entry_data("bananas", "bananas")
    data["colour"] = "yellow"
    del data["sources"]
    data["pt"]["anwser"] = data["pt"].pop("answer")
    write_entry(tmp_path, data)
    _, errors, _ = load(tmp_path)
    messages = " | ".join(e.message for e in errors)
    assert "unknown field 'colour'" in messages
    assert "missing field 'sources'" in messages
    assert "unknown field 'anwser'" in messages and "missing 'answer'" in messages
    colour = next(e for e in errors if "colour" in e.message)
    lines = (tmp_path / "rights" / "bananas.yaml").read_text().splitlines()
    assert lines[colour.line - 1].startswith("colour:")


def test_duplicate_ids(tmp_path):
    write_entry(tmp_path, entry_data("bananas", "bananas"))
    other = entry_data("bananas", "apples", category="help")
    write_entry(tmp_path, other)
    kb, errors, _ = load(tmp_path)
    assert len(kb.entries) == 1
    assert any("duplicate id" in e.message for e in errors)


def test_id_must_match_file_name(tmp_path):
    write_entry(tmp_path, entry_data("bananas", "bananas"), name="plantains")
    _, errors, _ = load(tmp_path)
    assert any("does not match the file name" in e.message for e in errors)


def test_too_few_questions_is_an_error_and_few_a_warning(tmp_path):
    data = entry_data("bananas", "bananas")
    data["es"]["questions"] = data["es"]["questions"][:2]
    data["pt"]["questions"] = data["pt"]["questions"][:5]
    write_entry(tmp_path, data)
    _, errors, warnings = load(tmp_path)
    assert [(e.lang, "only 2 questions" in e.message) for e in errors] == [("es", True)]
    assert any(w.lang == "pt" and "only 5 questions" in w.message for w in warnings)


def test_answer_telegram_would_reject(tmp_path):
    data = entry_data("bananas", "bananas")
    data["en"]["answer"] = "<b>Tom & Jerry</i>"
    write_entry(tmp_path, data)
    _, errors, _ = load(tmp_path)
    assert errors and all(e.lang == "en" for e in errors)
    assert any("&amp;" in e.message for e in errors)


def test_answer_over_the_limit(tmp_path):
    data = entry_data("bananas", "bananas")
    data["es"]["answer"] = "palabra " * 600
    write_entry(tmp_path, data)
    _, errors, _ = load(tmp_path)
    assert any(e.lang == "es" and "limit" in e.message for e in errors)


def test_same_phrasing_in_two_entries(tmp_path):
    a = entry_data("bananas", "bananas")
    b = entry_data("tractors", "tractors")
    b["en"]["questions"][0] = "Tell me about BANANAS!"   # the same once normalised
    write_entry(tmp_path, a)
    write_entry(tmp_path, b)
    _, errors, _ = load(tmp_path)
    assert any("also in entry" in e.message and "cannot tell them apart" in e.message for e in errors)


def test_review_by_in_the_past_is_a_warning(tmp_path):
    data = entry_data("bananas", "bananas")
    data["review_by"] = dt.date(2026, 1, 1)
    write_entry(tmp_path, data)
    kb, errors, warnings = load(tmp_path)
    assert errors == [] and "bananas" in kb.entries
    assert any("review_by 2026-01-01 has passed" in w.message for w in warnings)


def test_bad_category_and_date(tmp_path):
    data = entry_data("bananas", "bananas")
    data["category"] = "fruit"
    data["reviewed"] = "last tuesday"
    write_entry(tmp_path, data, name="bananas")
    _, errors, _ = load(tmp_path)
    messages = " | ".join(e.message for e in errors)
    assert "unknown category 'fruit'" in messages
    assert "YYYY-MM-DD" in messages


def test_one_broken_file_does_not_stop_the_others(tmp_path):
    write_entry(tmp_path, entry_data("bananas", "bananas"))
    (tmp_path / "rights" / "broken.yaml").write_text("id: broken\n  category: [")
    kb, errors, _ = load(tmp_path)
    assert "bananas" in kb.entries
    assert errors and errors[0].file.endswith("broken.yaml")
