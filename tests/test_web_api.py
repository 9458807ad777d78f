"""The web chat's HTTP side, in process: the real engine and SQLite file behind the real aiohttp
routes (aiohttp's test server on a loopback port)."""

from __future__ import annotations

import asyncio
import json
import sqlite3

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.channels.web import MAX_BODY, STATIC, Buckets, WebChannel, expire_sessions
from bot.config import Settings
from bot.engine import Engine
from bot.i18n import translate

SESSION = "A1b2C3d4E5f6G7h8I9j0Kl"


def run(knowledge, db, scenario, **settings):
    async def main():
        app = web.Application(client_max_size=256 * 1024)
        WebChannel(Settings(web_chat=True, **settings), Engine(knowledge, db)).mount(app)
        async with TestClient(TestServer(app)) as client:
            return await scenario(client)
    return asyncio.run(main())


def test_the_page_is_small_strict_and_in_the_browsers_language(knowledge, db):
    async def scenario(client):
        page = await client.get("/", headers={"Accept-Language": "ht-HT,ht;q=0.9,fr;q=0.5"})
        body = await page.text()
        csp = page.headers["Content-Security-Policy"]
        for rule in ("default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'",
                     "frame-ancestors 'self' https://campaign.example.org", "require-trusted-types-for 'script'"):
            assert rule in csp
        assert "unsafe-inline" not in csp and "Set-Cookie" not in page.headers
        assert page.headers["Referrer-Policy"] == "no-referrer"
        assert '<html lang="ht">' in body and translate("ht", "Quick exit") in body
        assert "<script>" not in body.replace('<script src="/web/app.js" defer></script>', "")
        assert "http" not in body.replace('data-exit="https://www.google.com/"', "")   # nothing third-party
        sizes = [len(body.encode())]
        for path in ("/web/app.js", "/web/app.css", "/web/strings.json"):
            answer = await client.get(path)
            assert answer.status == 200 and "Set-Cookie" not in answer.headers
            sizes.append(len(await answer.read()))
        assert sum(sizes) < 60 * 1024, sizes
        strings = await (await client.get("/web/strings.json")).json()
        assert strings["pt"]["send"] == translate("pt", "Send") and set(strings) == {"en", "pt", "es", "ht"}
    run(knowledge, db, scenario, web_embed_origins=("https://campaign.example.org",))
    assert "fetch(" in (STATIC / "app.js").read_text() and "innerHTML" not in (STATIC / "app.js").read_text()


def test_a_question_and_bad_input(knowledge, db):
    async def scenario(client):
        answer = await client.post("/web/api/message", json={
            "session": SESSION, "text": "o que faço se a imigração bater na minha porta", "lang": "pt-BR"})
        data = await answer.json()
        assert answer.status == 200 and data["language"] == "pt" and data["chosen"] is None
        assert answer.headers["Cache-Control"] == "no-store" and "Set-Cookie" not in answer.headers
        title = knowledge.kb.entries["ice-at-home"].text("pt").title
        assert ["b", [title]] in data["replies"][0]["text"]
        assert data["replies"][0]["buttons"][0][0]["data"].startswith("h:")
        for bad in ({"session": "short", "text": "hi"}, {"session": SESSION}, {"session": SESSION, "text": 5},
                    {"session": SESSION, "text": "a", "button": "m"}):
            assert (await client.post("/web/api/message", json=bad)).status == 400
        assert (await client.post("/web/api/message", data=b"not json")).status == 400
        too_big = await client.post("/web/api/message", data=b"x" * (MAX_BODY + 10),
                                    headers={"Accept-Language": "es"})
        assert too_big.status == 413
        assert (await too_big.json())["message"] == translate(
            "es", "Your message is too long. Please make it shorter: it is still in the box.")
        # picking a language: the page is told, and follows it
        picked = await (await client.post("/web/api/message", json={"session": SESSION, "button": "l:ht@pt"})).json()
        assert picked["chosen"] == "ht"
    run(knowledge, db, scenario)


def test_rate_limit_answers_politely(knowledge, db):
    async def scenario(client):
        statuses = []
        for _ in range(12):
            answer = await client.post("/web/api/message", json={"session": SESSION, "text": "thank you",
                                                                  "lang": "pt-BR"})
            statuses.append(answer.status)
        assert statuses[:8] == [200] * 8 and statuses[-1] == 429
        data = await answer.json()
        assert data["message"] == translate("pt", "You are writing very fast. Please wait a few seconds, "
                                                  "then send again: your message is still in the box.")
        # another session from the same address still gets answers
        other = await client.post("/web/api/message", json={"session": SESSION[::-1], "text": "thank you"})
        assert other.status == 200
        # a tap on a button (the menu) is not typing: the session's limit does not stop it
        tap = await client.post("/web/api/message", json={"session": SESSION, "button": "m@pt"})
        assert tap.status == 200
    run(knowledge, db, scenario)
    buckets = Buckets(2, 1.0)
    assert [buckets.take("a", now=0), buckets.take("a", now=0), buckets.take("a", now=0)] == [True, True, False]
    assert buckets.take("a", now=1.0) and buckets.take("b", now=1.0)


def test_forget_and_old_sessions_are_deleted(knowledge, db, tmp_path):
    async def scenario(client):
        await client.post("/web/api/message", json={"session": SESSION, "text": "/language"})
        done = await (await client.post("/web/api/message", json={"session": SESSION, "button": "f:yes@en"})).json()
        assert done["forgotten"] is True and done["chosen"] is None
        await client.post("/web/api/message", json={"session": SESSION[::-1], "text": "thank you"})
    run(knowledge, db, scenario)
    conn = sqlite3.connect(tmp_path / "bot.sqlite3")
    try:
        addresses = [r[0] for r in conn.execute("SELECT address FROM people WHERE channel = 'web'")]
        assert addresses == [SESSION[::-1]]
        conn.execute("UPDATE users SET last_seen = '2020-01-01T00:00:00+00:00'")
        conn.commit()
    finally:
        conn.close()
    import datetime as dt
    assert expire_sessions(db, dt.timedelta(days=2)) == 1
    conn = sqlite3.connect(tmp_path / "bot.sqlite3")
    try:
        assert conn.execute("SELECT COUNT(*) FROM people WHERE channel = 'web'").fetchone()[0] == 0
    finally:
        conn.close()


def test_replies_are_a_tree_nothing_is_markup():
    from bot.channels.web.render import tree
    assert tree("<b>a</b> &lt;script&gt;x&lt;/script&gt;") == [["b", ["a"]], " <script>x</script>"]
    assert tree('<a href="javascript:alert(1)">x</a><a href="https://e.org">y</a>') == ["x", ["a", {"href": "https://e.org"}, ["y"]]]
    assert tree("<script>alert(1)</script><img src=x onerror=alert(1)>ok") == ["alert(1)ok"]
    assert json.dumps(tree('<span class="tg-spoiler">s</span>')) == '[["mark", ["s"]]]'
