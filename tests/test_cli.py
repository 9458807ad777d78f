"""`python main.py ...` as a person or a script runs it."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(args, stdin="", env=None, tmp_path=None):
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "BOT_"))}
    if tmp_path is not None:
        environment["BOT_DATABASE"] = str(tmp_path / "bot.sqlite3")
    environment.update(env or {})
    return subprocess.run([sys.executable, "main.py", *args], input=stdin, capture_output=True,
                          text=True, cwd=ROOT, env=environment, timeout=120)


def test_chat_through_standard_input(tmp_path):
    result = run(["chat"], stdin="2\nos federais estão batendo na minha porta, o que eu faço?\n/menu\n1\n",
                 tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "[1] English" in out and "[4] Kreyòl ayisyen" in out        # the picker on first contact
    assert "Pronto: vou responder em português" in out                # pressed [2]
    assert "Não abra a porta" in out                                  # the answer, in Portuguese
    assert "Escolha um tema" in out and "Conheça seus direitos" in out  # /menu, then a category
    assert "ICE na sua porta" in out
    assert "<b>" not in out                                           # plain text in the terminal


def test_chat_with_lang_option(tmp_path):
    result = run(["chat", "--lang", "ht"], stdin="/menu\n", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Chwazi yon sijè" in result.stdout


def test_ask_json_one_object_per_line():
    questions = ["la migra esta en mi puerta que hago", "what's the weather like tomorrow",
                 "ki kote m ka jwenn yon avoka gratis"]
    result = run(["ask", "--json"], stdin="\n".join(questions) + "\n")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 3
    rows = [json.loads(line) for line in lines]
    for row, question in zip(rows, questions):
        assert set(row) == {"question", "lang", "entry", "score", "suggestions", "answer"}
        assert row["question"] == question
        assert isinstance(row["score"], (int, float)) and isinstance(row["suggestions"], list)
    assert rows[0]["lang"] == "es" and rows[0]["entry"] == "ice-at-home" and "puerta" in rows[0]["answer"]
    assert rows[1]["entry"] is None and "617-370-5023" in rows[1]["answer"]
    assert rows[2]["lang"] == "ht" and rows[2]["entry"] == "legal-help"


def test_ask_one_question_with_lang():
    result = run(["ask", "--lang", "pt", "--json", "ICE", "is", "at", "my", "door", "what", "do", "I", "do"])
    row = json.loads(result.stdout)
    assert row["lang"] == "pt" and row["entry"] == "ice-at-home"           # an English question, a Portuguese answer
    assert "ICE na sua porta" in row["answer"] and "Não abra a porta" in row["answer"]
    assert row["question"] == "ICE is at my door what do I do"


def test_kb_dump_is_the_loaded_knowledge_base():
    result = run(["kb", "dump"])
    assert result.returncode == 0, result.stderr
    entries = json.loads(result.stdout)
    ids = {e["id"] for e in entries}
    assert {"ice-at-home", "legal-help", "privacy"} <= ids
    for entry in entries:
        assert entry["category"] in {"rights", "help", "campaign", "action", "about"}
        for lang in ("en", "pt", "es", "ht"):
            assert set(entry[lang]) == {"title", "questions", "examples", "keywords", "answer"}


def test_kb_check_passes_on_the_real_knowledge_base():
    result = run(["kb", "check"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 error(s)" in result.stdout


def test_kb_check_fails_with_file_and_line(tmp_path):
    folder = tmp_path / "knowledge" / "rights"
    folder.mkdir(parents=True)
    (folder / "broken.yaml").write_text("id: broken\ncategory: rights\nen:\n  title: [unclosed\n")
    result = run(["kb", "check", "--dir", str(tmp_path / "knowledge")])
    assert result.returncode == 1
    assert "knowledge/rights/broken.yaml:4" in result.stdout


def test_run_without_token_explains_how_to_get_one(tmp_path):
    result = run(["run"], tmp_path=tmp_path)
    assert result.returncode == 2
    assert "@BotFather" in result.stderr and "python main.py chat" in result.stderr
