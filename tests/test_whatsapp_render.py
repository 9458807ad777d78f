"""The WhatsApp renderer: the knowledge base's HTML subset and buttons within WhatsApp's limits."""

from auxil.fake_graph_api import _problems

from bot.channels.whatsapp import language_hint, signature_ok
from bot.channels.whatsapp.render import render, to_whatsapp
from bot.engine import Button, Reply


def _valid(message):
    return _problems({"messaging_product": "whatsapp", "to": "16175550100", **message})


def test_marks_links_and_entities():
    text = ('<b>Title </b>\n\nA <i>word</i>, <s>old</s>, <code>I-862</code> &amp; '
            '<a href="https://www.miracoalition.org/?p=1">MIRA</a> or '
            '<a href="https://locator.ice.gov">locator.ice.gov</a> <u>under</u><b></b>\n• one')
    assert to_whatsapp(text) == ("*Title* \n\nA _word_, ~old~, `I-862` & MIRA "
                                 "(https://www.miracoalition.org/?p=1) or https://locator.ice.gov under\n• one")


def test_every_answer_in_the_knowledge_base_renders_within_the_limits(knowledge):
    for entry in knowledge.kb.entries.values():
        for lang in entry.translations:
            tr = entry.text(lang)
            rendered = to_whatsapp(f"<b>{tr.title}</b>\n\n{tr.answer}")
            assert "<" not in rendered.replace("&lt;", "") and "href" not in rendered, entry.id
            for message in render(Reply(rendered, [[Button(tr.title, f"a:{entry.id}@{lang}")]])):
                assert _valid(message) == [], (entry.id, lang)


def test_up_to_three_short_buttons_are_reply_buttons_else_a_list():
    few = render(Reply("Delete?", [[Button("Yes", "f:yes@en")], [Button("Cancel", "f:no@en")]]))
    assert few[0]["interactive"]["type"] == "button" and _valid(few[0]) == []
    long_label = render(Reply("Delete?", [[Button("Yes, delete everything", "f:yes@en")]]))
    assert long_label[0]["interactive"]["type"] == "list" and _valid(long_label[0]) == []


def test_more_than_ten_choices_are_paginated_and_long_titles_shortened():
    buttons = [[Button(f"A rather long topic title number {i}", f"a:e{i}@en")] for i in range(23)]
    messages = render(Reply("Pick one", buttons))
    assert len(messages) == 3 and all(_valid(m) == [] for m in messages)
    rows = [r for m in messages for r in m["interactive"]["action"]["sections"][0]["rows"]]
    assert [r["id"] for r in rows] == [f"a:e{i}@en" for i in range(23)]
    assert rows[0]["title"].endswith("…") and rows[0]["description"] == "A rather long topic title number 0"


def test_long_texts_are_split_and_the_buttons_ride_on_the_last_part():
    text = "\n".join(f"• line {i} " + "x" * 90 for i in range(120))   # about 12,000 characters
    messages = render(Reply(text, [[Button("☰ Menu", "m@en")]]))
    assert all(_valid(m) == [] for m in messages)
    assert [m["type"] for m in messages][-1] == "interactive"
    bodies = [m["text"]["body"] if m["type"] == "text" else m["interactive"]["body"]["text"] for m in messages]
    assert "\n".join(bodies).split("\n") == text.split("\n")
    plain = render(Reply(text))
    assert all(m["type"] == "text" and len(m["text"]["body"]) <= 4096 for m in plain) and len(plain) == 3


def test_country_code_hint_and_signature():
    assert language_hint("5511987654321") == "pt" and language_hint("50937000000") == "ht"
    assert language_hint("5215550000000") == "es" and language_hint("16175550100") is None
    import hashlib
    import hmac
    body = b'{"entry": []}'
    good = "sha256=" + hmac.new(b"secret", body, hashlib.sha256).hexdigest()
    assert signature_ok("secret", body, good)
    assert not signature_ok("secret", body + b" ", good)
    assert not signature_ok("other", body, good) and not signature_ok("secret", body, None)
