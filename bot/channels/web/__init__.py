"""The web chat: a page for the campaign's site, served by the bot's HTTP server.

- `GET /` is the page (plain HTML, CSS and one small script from `static/`, no third-party
  request, no cookie, under 60 KB in all); `GET /web/app.js`, `/web/app.css`; `GET
  /web/strings.json` the page's own words in the four languages, from the same gettext catalogs as
  every other channel.
- `POST /web/api/message` takes `{"session", "text" | "button", "lang"}` and answers
  `{"language", "chosen", "forgotten", "replies": [{"text": tree, "buttons", "replace"}]}`, where the
  text is the HTML subset as a tree (render.py): the page builds it with DOM calls, never parses
  HTML. The body is capped (MAX_BODY); a session and an address each have a token bucket; beyond
  them the answer is 429 with a polite sentence in the page's language, and the page keeps the
  message in its box.
- A person is ("web", session id): a random id the page makes and keeps in sessionStorage. The
  server keeps what every channel keeps (the language picked and two dates, in `users`/`people`);
  web sessions not used for SESSION_DAYS are deleted (a closed tab never comes back). /forget
  works as elsewhere, and the page then erases the conversation and takes a new id.
- Every answer carries a strict Content-Security-Policy (scripts and styles from this server only,
  no inline code, Trusted Types required, framing only by BOT_WEB_EMBED_ORIGINS), no-referrer,
  nosniff; the API answers are not cached. Addresses are used for rate limiting in memory only,
  never logged or stored.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import json
import logging
import re
import time
from pathlib import Path

from aiohttp import web

from ...engine import Engine, Incoming
from ...i18n import N_, translate
from ...languages import DEFAULT_LANGUAGE, LANGUAGES, NATIVE_NAMES, from_telegram_code
from .render import response_json

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
API_PATH = "/web/api/message"
MAX_BODY = 8 * 1024          # a question is at most MAX_TEXT characters; JSON around it is small
MAX_TEXT = 2000
SESSION = re.compile(r"[A-Za-z0-9_-]{22,64}")
SESSION_DAYS = 2             # web sessions (tabs) not used for this long are deleted
# token buckets: (burst, refill per second)
SESSION_RATE = (8, 1 / 3)    # 8 at once, then one every 3 seconds (20 a minute)
ADDRESS_RATE = (60, 1.0)     # one address (a family, a library): 60 at once, then one a second

# The page's own words: all in the catalogs (locales/*/LC_MESSAGES/messages.po), served to the page.
STRINGS = {
    "title": N_("Know your rights: questions and answers"),
    "exit": N_("Quick exit"),
    "exit_hint": N_("Leave this page at once and erase the conversation (Esc key)"),
    "emergency": N_("Who to call right now"),
    "menu": N_("Browse topics"),
    "language": N_("Change language"),
    "forget": N_("Delete everything the bot keeps about you"),
    "log": N_("Conversation"),
    "input": N_("Write your question"),
    "send": N_("Send"),
    "you": N_("You wrote:"),
    "bot": N_("The bot answered:"),
    "advice": N_("I give information, not legal advice."),
    "slow": N_("You are writing very fast. Please wait a few seconds, then send again: your message "
               "is still in the box."),
    "long": N_("Your message is too long. Please make it shorter: it is still in the box."),
    "failed": N_("Something went wrong on our side. Please send again in a moment: your message "
                 "is still in the box."),
    "offline": N_("The bot could not be reached. Check your connection, then send again: your "
                  "message is still in the box."),
}


def strings(lang: str) -> dict[str, str]:
    return {key: translate(lang, msgid) for key, msgid in STRINGS.items()}


def best_language(accept: str | None) -> str:
    """The first of the four languages in an Accept-Language header, else English."""
    for part in (accept or "").split(","):
        lang = from_telegram_code(part.split(";")[0].strip())
        if lang:
            return lang
    return DEFAULT_LANGUAGE


class Buckets:
    """Token buckets by key, in memory (a restart forgets them; keys are never logged)."""

    def __init__(self, burst: int, per_second: float, limit: int = 50_000):
        self.burst, self.per_second, self.limit = burst, per_second, limit
        self._state: dict[str, tuple[float, float]] = {}

    def take(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        tokens, at = self._state.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.per_second)
        if len(self._state) > self.limit:   # forget buckets that are full again
            full = self.burst / self.per_second
            self._state = {k: v for k, v in self._state.items() if now - v[1] < full}
        if tokens < 1:
            self._state[key] = (tokens, now)
            return False
        self._state[key] = (tokens - 1, now)
        return True


def content_security_policy(embed_origins: tuple[str, ...]) -> str:
    ancestors = " ".join(("'self'",) + embed_origins)
    return ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
            "connect-src 'self'; manifest-src 'none'; base-uri 'none'; form-action 'none'; "
            f"frame-ancestors {ancestors}; require-trusted-types-for 'script'; trusted-types 'none'")


class WebChannel:
    def __init__(self, settings, engine: Engine):
        self.settings = settings
        self.engine = engine
        self.sessions = Buckets(*SESSION_RATE)
        self.addresses = Buckets(*ADDRESS_RATE)
        self.csp = content_security_policy(tuple(settings.web_embed_origins))
        self._template = (STATIC / "index.html").read_text(encoding="utf-8")
        self._files = {name: (STATIC / name).read_bytes() for name in ("app.js", "app.css")}
        self._task: asyncio.Task | None = None

    def mount(self, app: web.Application) -> None:
        app.router.add_get("/", self.page)
        app.router.add_get("/web/app.js", self.static)
        app.router.add_get("/web/app.css", self.static)
        app.router.add_get("/web/strings.json", self.strings)
        app.router.add_post(API_PATH, self.message)
        app.on_response_prepare.append(self._headers)
        app.on_startup.append(self._start)
        app.on_cleanup.append(self._stop)

    async def _headers(self, request: web.Request, response: web.StreamResponse) -> None:
        if request.path == "/" or request.path.startswith("/web/"):
            response.headers["Content-Security-Policy"] = self.csp
            response.headers["X-Content-Type-Options"] = "nosniff"
            response.headers["Referrer-Policy"] = "no-referrer"
            response.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), interest-cohort=()"
            response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
            if request.path == API_PATH:
                response.headers["Cache-Control"] = "no-store"

    # -- the page -------------------------------------------------------------------------------

    async def page(self, request: web.Request) -> web.Response:
        lang = best_language(request.headers.get("Accept-Language"))
        words = strings(lang)
        page = self._template
        for key, value in words.items():
            page = page.replace("{{" + key + "}}", html.escape(value, quote=True))
        page = (page.replace("{{lang}}", lang)
                .replace("{{exit_url}}", html.escape(self.settings.web_exit_url, quote=True)))
        return web.Response(text=page, content_type="text/html", charset="utf-8",
                            headers={"Cache-Control": "no-cache"})

    async def static(self, request: web.Request) -> web.Response:
        name = request.path.rsplit("/", 1)[-1]
        kind = "text/javascript" if name.endswith(".js") else "text/css"
        return web.Response(body=self._files[name], content_type=kind, charset="utf-8",
                            headers={"Cache-Control": "no-cache"})

    async def strings(self, request: web.Request) -> web.Response:
        body = {lang: {**strings(lang), "name": NATIVE_NAMES[lang]} for lang in LANGUAGES}
        return web.json_response(body, headers={"Cache-Control": "no-cache"})

    # -- the conversation -----------------------------------------------------------------------

    def _address(self, request: web.Request) -> str:
        if self.settings.web_trust_proxy:
            forwarded = request.headers.get("X-Forwarded-For", "")
            if forwarded:
                return forwarded.split(",")[-1].strip()
        return request.remote or "?"

    def _refuse(self, status: int, key: str, lang: str) -> web.Response:
        return web.json_response({"error": key, "message": translate(lang, STRINGS[key])}, status=status)

    async def message(self, request: web.Request) -> web.Response:
        page_lang = best_language(request.headers.get("Accept-Language"))
        if request.content_length is not None and request.content_length > MAX_BODY:
            return self._refuse(413, "long", page_lang)
        try:
            body = await request.content.read(MAX_BODY + 1)
        except (asyncio.TimeoutError, ConnectionError):
            return self._refuse(400, "offline", page_lang)
        if len(body) > MAX_BODY:
            return self._refuse(413, "long", page_lang)
        try:
            data = json.loads(body)
            session = data.get("session")
            text, pressed = data.get("text"), data.get("button")
            hint = data.get("lang")
        except (ValueError, AttributeError):
            return web.json_response({"error": "bad request"}, status=400)
        hint = hint if isinstance(hint, str) and len(hint) <= 35 else None
        page_lang = from_telegram_code(hint) or page_lang
        if (not isinstance(session, str) or not SESSION.fullmatch(session)
                or (text is None) == (pressed is None)
                or not isinstance(text if text is not None else pressed, str)):
            return web.json_response({"error": "bad request"}, status=400)
        if text is not None and len(text) > MAX_TEXT:
            return self._refuse(413, "long", page_lang)
        if pressed is not None and len(pressed) > 128:
            return web.json_response({"error": "bad request"}, status=400)
        # Typing counts against the session's limit ("you are writing very fast"); taps on buttons
        # (menus, suggestions, feedback) only against the address's, which bounds any flood.
        if not self.addresses.take(self._address(request)) or (
                pressed is None and not self.sessions.take(session)):
            log.info("web chat: a message was refused by the rate limit")
            return self._refuse(429, "slow", page_lang)
        db = self.engine.db
        person = db.person("web", session)
        try:
            response = self.engine.handle(Incoming(person, text=text, button=pressed, language_hint=hint,
                                                   channel="web"))
        except Exception as exc:   # noqa: BLE001 - logged without the message; the page keeps it
            log.error("web chat: error while handling a message: %s", type(exc).__name__,
                      exc_info=exc if log.isEnabledFor(logging.DEBUG) else None)
            return self._refuse(500, "failed", page_lang)
        chosen = None if response.forgotten else (db.get_user(person) or _NoUser).language
        return web.json_response(response_json(response, chosen))

    # -- retention of web sessions ------------------------------------------------------------

    async def _start(self, _app) -> None:
        self._task = asyncio.create_task(self._expire_sessions())

    async def _stop(self, _app) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _expire_sessions(self) -> None:
        while True:
            try:
                count = expire_sessions(self.engine.db, dt.timedelta(days=SESSION_DAYS))
                if count:
                    log.info("web chat: %d unused session(s) deleted", count)
            except Exception as exc:   # noqa: BLE001 - retention must not stop the server
                log.warning("web chat: could not delete old sessions (%s)", type(exc).__name__)
            await asyncio.sleep(3600)


class _NoUser:
    language = None


def expire_sessions(db, unused_for: dt.timedelta) -> int:
    """Delete web people whose session was not used for `unused_for` (their tab is long closed)."""
    cutoff = (dt.datetime.now(dt.timezone.utc) - unused_for).isoformat(timespec="seconds")
    with db._lock:
        rows = [r[0] for r in db._conn.execute(
            "SELECT p.chat_id FROM people p LEFT JOIN users u ON u.chat_id = p.chat_id "
            "WHERE p.channel = 'web' AND (u.last_seen IS NULL OR u.last_seen < ?)", (cutoff,))]
    for chat_id in rows:
        db.forget_user(chat_id)
    return len(rows)
