"""SMS through Twilio: the webhook Twilio posts incoming texts to, and the sender.

- `POST /sms/twilio` (form-encoded, as Twilio posts) is read only with a valid `X-Twilio-Signature`:
  base64 HMAC-SHA1, keyed with the auth token, of the URL Twilio called followed by every POST
  parameter's name and value, sorted by name. The URL is BOT_PUBLIC_URL + the path (and query) when
  that is set, since a proxy changes what the bot sees, else the request's own URL. Without a
  signature: 401; with a wrong one: 403; logged without the body. Bodies are capped (MAX_BODY).
  The answer is an empty TwiML <Response/>: replies go through the REST API (Messages.json), one
  at a time at TWILIO_RATE per second (a long code: 1).
- No buttons on SMS: choices are numbered and a reply with the number picks one, as in the terminal.
  An answer is sent in pages of at most 3 segments (render.py); the first says what to do, and
  "MORE" (MAIS, MÁS, PLIS) sends the next one. The numbers and the pages waiting are kept in memory
  for PENDING_FOR, by person key (never by phone number): after a restart a number is read as text.
- STOP, START, HELP: Twilio answers these itself on a number with its default opt-out handling
  (TWILIO_HANDLES_KEYWORDS, on by default), and then refuses to send to the number until START
  (error 21610). The bot agrees with it: on STOP (STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE,
  OPTOUT) it sends nothing more, stops any announcements and forgets the pages waiting; on START
  (UNSTOP, YES) it answers again; on HELP (INFO) it stays silent for Twilio's help text. With the
  setting off, the bot sends those answers itself. The stop words of the other languages (PARAR,
  PARE, SAIR, ALTO, BASTA, KANPE, RETE, SISPANN...), which Twilio does not know, get the bot's
  confirmation in that language, and then nothing more until the person writes again.
- A phone number is personal data: it is the person's address in `people` (deleted by /forget and
  by the retention of inactive people), it goes to Twilio's API, and it is never in a log line, an
  error message or the in-memory state (which holds person keys).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import re
import time
from urllib.parse import parse_qsl

import aiohttp
from aiohttp import web

from ...engine import Engine, Incoming
from ...i18n import N_, translate, use_language
from ...languages import DEFAULT_LANGUAGE, LANGUAGES
from ...text import normalize
from ..whatsapp import language_hint
from .render import MORE_WORDS, message_text, pages

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/sms/twilio"
MAX_BODY = 64 * 1024          # Twilio's posts are a few KB (a text is at most 1,600 characters)
SEND_ATTEMPTS = 3
PENDING_FOR = 3600.0          # seconds the numbered choices and the pages waiting are kept
PHONE = re.compile(r"\+[1-9][0-9]{6,14}")
TWIML_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'

# Twilio's default opt-out handling (English keywords, whole message, any case)
OPT_OUT = {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout"}
OPT_IN = {"start", "unstop", "yes"}
HELP = {"help", "info"}
# the other languages' stop words (whole message, normalised), with the language they are in
STOP_WORDS = {
    "parar": "pt", "pare": "pt", "sair": "pt", "cancelar": "pt", "descadastrar": "pt",
    "nao quero mais": "pt",
    "alto": "es", "basta": "es", "baja": "es", "darme de baja": "es", "detener": "es",
    "cancelar suscripcion": "es",
    "kanpe": "ht", "rete": "ht", "sispann": "ht", "dezabone": "ht", "pa voye anko": "ht",
}
MENU_WORDS = {"menu", "meni", "temas", "topics"}

STOPPED = N_("You will get no more texts from this number. To start again, reply START.")
STARTED = N_("Welcome back. Text your question, or MENU for the topics. To stop, reply STOP.")
HELP_TEXT = N_("Know your rights bot (Protecting Massachusetts Communities): information, not legal "
               "advice. Text your question. Emergency: LUCE hotline {hotline}. Reply STOP to stop. "
               "Msg & data rates may apply.")
NOTHING_MORE = N_("That was all. Text your question, or MENU for the topics.")


def signature(auth_token: str, url: str, params: list[tuple[str, str]]) -> str:
    """Twilio's X-Twilio-Signature for a form-encoded POST to `url`."""
    data = url + "".join(k + v for k, v in sorted(params))
    return base64.b64encode(hmac.new(auth_token.encode(), data.encode("utf-8"), hashlib.sha1).digest()).decode()


def signature_ok(auth_token: str, url: str, params: list[tuple[str, str]], header: str | None) -> bool:
    if not header:
        return False
    return hmac.compare_digest(signature(auth_token, url, params).encode(), header.strip().encode())


class TwilioError(RuntimeError):
    def __init__(self, status: int, code: int | None):
        super().__init__(f"HTTP {status}, Twilio error {code}")
        self.status, self.code = status, code


class TwilioClient:
    """POST {base}/2010-04-01/Accounts/{sid}/Messages.json with basic auth (sid, auth token)."""

    def __init__(self, base_url: str, account_sid: str, auth_token: str, from_number: str,
                 rate: float = 1.0):
        self.url = f"{base_url.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Messages.json"
        self._auth = aiohttp.BasicAuth(account_sid, auth_token)
        self.from_number = from_number
        self.interval = 1.0 / rate
        self._next = 0.0
        self._lock = asyncio.Lock()
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _pace(self) -> None:
        async with self._lock:
            now = time.monotonic()
            wait = self._next - now
            self._next = max(now, self._next) + self.interval
        if wait > 0:
            await asyncio.sleep(wait)

    async def post(self, to: str, body: str) -> dict:
        await self._pace()
        async with self._session.post(self.url, data={"To": to, "From": self.from_number, "Body": body},
                                      auth=self._auth) as answer:
            try:
                data = await answer.json(content_type=None)
            except (ValueError, aiohttp.ContentTypeError):
                data = {}
            if answer.status >= 400:
                raise TwilioError(answer.status, (data or {}).get("code"))
            return data

    async def send(self, to: str, body: str) -> str:
        """'sent', 'opted-out' (Twilio's 21610: the person replied STOP) or 'failed'."""
        for attempt in range(1, SEND_ATTEMPTS + 1):
            try:
                await self.post(to, body)
                return "sent"
            except TwilioError as exc:
                if exc.code == 21610:
                    log.info("an SMS was not sent: the person had replied STOP (Twilio 21610)")
                    return "opted-out"
                if not (exc.status == 429 or exc.status >= 500) or attempt == SEND_ATTEMPTS:
                    log.warning("dropped an SMS after %d attempt(s): HTTP %d, Twilio error %s",
                                attempt, exc.status, exc.code)
                    return "failed"
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                if attempt == SEND_ATTEMPTS:
                    log.warning("dropped an SMS after %d attempts: %s", attempt, type(exc).__name__)
                    return "failed"
            await asyncio.sleep(0.5 * 2 ** (attempt - 1))
        return "failed"


class SmsChannel:
    def __init__(self, settings, engine: Engine, client: TwilioClient | None = None):
        self.settings = settings
        self.engine = engine
        self.client = client or TwilioClient(settings.twilio_api_base_url, settings.twilio_account_sid,
                                             settings.twilio_auth_token, settings.twilio_from_number,
                                             settings.sms_rate)
        self.pending: dict[int, tuple[float, list, list[str]]] = {}   # person → (when, choices, pages)
        self.opted_out: set[int] = set()                               # person keys (Twilio's STOP)
        self._queue: asyncio.Queue | None = None
        self._worker: asyncio.Task | None = None

    def mount(self, app: web.Application) -> None:
        app.router.add_post(WEBHOOK_PATH, self.receive)
        app.on_startup.append(self._start)
        app.on_cleanup.append(self._stop)

    async def _start(self, _app) -> None:
        await self.client.start()
        self._queue = asyncio.Queue()
        self._worker = asyncio.create_task(self._send_loop())

    async def _stop(self, _app) -> None:
        if self._queue is not None:
            try:
                await asyncio.wait_for(self._queue.join(), timeout=10)
            except asyncio.TimeoutError:
                log.warning("stopping with %d SMS not sent", self._queue.qsize())
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        await self.client.close()

    async def _send_loop(self) -> None:
        while True:
            person, to, body = await self._queue.get()
            try:
                if person in self.opted_out:
                    continue
                if await self.client.send(to, body) == "opted-out":
                    self._opt_out(person)
            except Exception as exc:   # noqa: BLE001 - one failed text must not stop the sender
                log.error("error while sending an SMS: %s", type(exc).__name__)
            finally:
                self._queue.task_done()

    def _url(self, request: web.Request) -> str:
        if self.settings.public_url:
            return self.settings.public_url + str(request.rel_url)
        return str(request.url)

    async def receive(self, request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > MAX_BODY:
            log.warning("refused an SMS webhook post: body too large")
            return web.Response(status=413, text="too large")
        try:
            raw = await request.content.read(MAX_BODY + 1)
        except (asyncio.TimeoutError, ConnectionError):
            return web.Response(status=400, text="bad request")
        if len(raw) > MAX_BODY:
            log.warning("refused an SMS webhook post: body too large")
            return web.Response(status=413, text="too large")
        try:
            params = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(raw))
        except (UnicodeDecodeError, ValueError):
            params = None
        header = request.headers.get("X-Twilio-Signature")
        if not header:
            log.warning("refused an SMS webhook post: no signature")
            return web.Response(status=401, text="signature required")
        if params is None or not signature_ok(self.settings.twilio_auth_token, self._url(request), params, header):
            log.warning("refused an SMS webhook post: wrong signature")
            return web.Response(status=403, text="bad signature")
        form = dict(params)
        number, sid = form.get("From", ""), form.get("MessageSid") or form.get("SmsSid") or ""
        if not PHONE.fullmatch(number) or not sid:
            log.warning("ignored an SMS webhook post without a phone number or message id")
            return self._twiml()
        db = self.engine.db
        if not db.claim_message("sms", sid):
            log.info("an SMS delivered again was not answered twice")
            return self._twiml()
        try:
            self._handle(number, form.get("Body", ""))
        except Exception as exc:   # noqa: BLE001 - logged without the text or the number
            db.release_message("sms", sid)
            log.error("error while handling an SMS: %s", type(exc).__name__,
                      exc_info=exc if log.isEnabledFor(logging.DEBUG) else None)
            return web.Response(status=500, text="error")
        return self._twiml()

    @staticmethod
    def _twiml() -> web.Response:
        return web.Response(text=TWIML_EMPTY, content_type="text/xml")

    def _opt_out(self, person: int) -> None:
        self.opted_out.add(person)
        self.pending.pop(person, None)
        self.engine.db.mark_unreachable(person)   # announcements stop, as when Telegram says blocked

    def _send(self, person: int, number: str, body: str) -> None:
        self._queue.put_nowait((person, number, body))

    def _language(self, person: int, hint: str | None) -> str:
        user = self.engine.db.get_user(person)
        return (user.language if user and user.language else None) or hint or DEFAULT_LANGUAGE

    def _handle(self, number: str, body: str) -> None:
        db = self.engine.db
        person = db.person("sms", number)
        hint = language_hint(number[1:])
        text = body.strip()
        word = normalize(text) if len(text) <= 40 else ""
        keyword = text.lower().strip(" .!")
        now = time.monotonic()
        self.pending = {p: v for p, v in self.pending.items() if now - v[0] < PENDING_FOR}
        if keyword in OPT_OUT:
            db.touch_user(person)
            self._opt_out(person)
            log.info("an SMS opt-out (STOP) was recorded")
            if not self.settings.twilio_keywords:
                self._send_now(person, number, translate(self._language(person, hint), STOPPED))
            return
        if keyword in OPT_IN and person in self.opted_out or keyword in OPT_IN - {"yes"}:
            db.touch_user(person)
            self.opted_out.discard(person)
            log.info("an SMS opt-in (START) was recorded")
            if not self.settings.twilio_keywords:
                self._send(person, number, translate(self._language(person, hint), STARTED))
            return
        if keyword in HELP:
            db.touch_user(person)
            if not self.settings.twilio_keywords:
                from ... import contacts
                self._send(person, number, translate(self._language(person, hint), HELP_TEXT,
                                                     hotline=contacts.LUCE_HOTLINE))
            return
        if person in self.opted_out:   # a text after STOP: Twilio refuses to send until START
            self.opted_out.discard(person)   # (it will say so with 21610, and we agree again)
        if word in STOP_WORDS:
            db.touch_user(person)
            self._opt_out(person)
            log.info("an SMS opt-out (a stop word) was recorded")
            lang = self._language(person, STOP_WORDS[word])
            self._send_now(person, number, translate(lang, STOPPED))
            return
        waiting = self.pending.get(person)
        if word in MORE_WORDS:
            if waiting and waiting[2]:
                self._send(person, number, waiting[2][0])
                self.pending[person] = (now, waiting[1], waiting[2][1:])
            else:
                db.touch_user(person)
                self._send(person, number, translate(self._language(person, hint), NOTHING_MORE))
            return
        if text.isdigit() and waiting and 1 <= int(text) <= len(waiting[1]):
            incoming = Incoming(person, button=waiting[1][int(text) - 1].data, language_hint=hint,
                                channel="sms")
        elif word in MENU_WORDS:
            incoming = Incoming(person, text="/menu", language_hint=hint, channel="sms")
        else:
            incoming = Incoming(person, text=text, language_hint=hint, channel="sms")
        response = self.engine.handle(incoming)
        if response.forgotten:
            self.pending.pop(person, None)
            self.opted_out.discard(person)
        lang = response.language if response.language in LANGUAGES else DEFAULT_LANGUAGE
        with use_language(lang):
            full, choices = message_text(response.replies)
            parts = pages(full)
        if not response.forgotten:
            self.pending[person] = (now, choices, parts[1:])
        self._send(person, number, parts[0])

    def _send_now(self, person: int, number: str, body: str) -> None:
        """The one confirmation after an opt-out: sent although the person is now opted out."""
        self._queue.put_nowait((None, number, body))
