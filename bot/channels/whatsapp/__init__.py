"""The WhatsApp Cloud API channel: the webhook Meta posts messages to, and the sender.

- `GET /whatsapp/webhook` answers Meta's verification (hub.mode, hub.verify_token, hub.challenge).
- `POST /whatsapp/webhook` is read only with a valid `X-Hub-Signature-256` (HMAC-SHA256 of the raw
  body with the app secret, compared in constant time, checked before the body is parsed; bodies
  are capped at MAX_BODY). Without one: 401; with a wrong one: 403; logged without the body.
- Meta retries deliveries: a message id already handled (48 hours, stored as a hash) is not
  answered twice. When handling fails, the id is released and the answer is 500, so Meta's retry
  is handled: nothing is lost.
- Text, interactive button and list replies go to the engine; every other type (image, audio,
  voice, video, document, sticker, location, contacts, reaction) is "a message with no words",
  answered "I can only read words" in the person's language, as on Telegram. A 'failed' status
  for an announcement's message updates that person's delivery record.
- A WhatsApp id is a phone number: it goes to storage (`people`) and to the Graph API, never to a
  log line or an error message.

aiohttp serves the webhook and calls the Graph API: one well-kept asyncio library for both the
server and the client, in the same event loop as python-telegram-bot.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging

from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web

from ...messages import Incoming, Response
from ...i18n import use_language
from .render import render

if TYPE_CHECKING:
    from ...engine import Engine

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/whatsapp/webhook"
MAX_BODY = 256 * 1024           # Meta's webhook posts are a few KB
SEND_ATTEMPTS = 3
RETRYABLE_CODES = {130429, 131056, 131000, 131016, 133004}  # rate limits, pair rate, temporary errors
TEXT_TYPES = {"text"}

# The phone's country code, as a weak hint only (after what the person writes, see Engine.handle).
COUNTRY_LANGUAGE = {
    "55": "pt", "351": "pt", "244": "pt", "238": "pt", "258": "pt", "239": "pt", "245": "pt",
    "509": "ht",
    "52": "es", "53": "es", "54": "es", "56": "es", "57": "es", "58": "es", "51": "es", "34": "es",
    "502": "es", "503": "es", "504": "es", "505": "es", "506": "es", "507": "es", "591": "es",
    "593": "es", "595": "es", "598": "es",
}


def language_hint(wa_id: str) -> str | None:
    """pt for +55, ht for +509...: the longest matching country code, else None (+1 says nothing)."""
    for length in (3, 2):
        if wa_id[:length] in COUNTRY_LANGUAGE:
            return COUNTRY_LANGUAGE[wa_id[:length]]
    return None


def signature_ok(secret: str, body: bytes, header: str | None) -> bool:
    """Meta's X-Hub-Signature-256: 'sha256=' + hex HMAC-SHA256 of the raw body."""
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header[len("sha256="):].strip().lower())


class GraphError(RuntimeError):
    """The Graph API refused a request; `code` is WhatsApp's error code (never the recipient)."""

    def __init__(self, status: int, code: int | None, title: str = ""):
        super().__init__(f"HTTP {status}, WhatsApp error {code}: {title}"[:200])
        self.status = status
        self.code = code


class GraphClient:
    """POST {base}/{phone number id}/messages with the bearer token."""

    def __init__(self, base_url: str, phone_number_id: str, access_token: str):
        self.url = f"{base_url.rstrip('/')}/{phone_number_id}/messages"
        self._headers = {"Authorization": f"Bearer {access_token}"}
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def post(self, payload: dict) -> dict:
        async with self._session.post(self.url, json=payload, headers=self._headers) as answer:
            try:
                data = await answer.json(content_type=None)
            except (ValueError, aiohttp.ContentTypeError):
                data = {}
            if answer.status >= 400 or "error" in data:
                error = data.get("error") or {}
                raise GraphError(answer.status, error.get("code"), str(error.get("title") or ""))
            return data

    async def send(self, to: str, message: dict) -> dict | None:
        """Send one message; retry what can succeed later, drop (and log, without who) the rest."""
        payload = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to, **message}
        for attempt in range(1, SEND_ATTEMPTS + 1):
            try:
                return await self.post(payload)
            except GraphError as exc:
                if not (exc.status >= 500 or exc.code in RETRYABLE_CODES) or attempt == SEND_ATTEMPTS:
                    log.warning("dropped a WhatsApp message after %d attempt(s): HTTP %d, error %s",
                                attempt, exc.status, exc.code)
                    return None
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                if attempt == SEND_ATTEMPTS:
                    log.warning("dropped a WhatsApp message after %d attempts: %s", attempt,
                                type(exc).__name__)
                    return None
            await asyncio.sleep(0.5 * 2 ** (attempt - 1))
        return None

    async def mark_read(self, message_id: str) -> None:
        try:
            await self.post({"messaging_product": "whatsapp", "status": "read", "message_id": message_id})
        except (GraphError, aiohttp.ClientError, asyncio.TimeoutError) as exc:
            log.info("could not mark a WhatsApp message as read (%s)", type(exc).__name__)


def incoming_of(message: dict, person: int) -> Incoming | None:
    """The engine's Incoming for one webhook message; None for what is not a person writing."""
    kind = message.get("type")
    hint = language_hint(str(message.get("from", "")))
    if kind == "text":
        return Incoming(person, text=(message.get("text") or {}).get("body", ""), language_hint=hint,
                        channel="whatsapp")
    if kind == "interactive":
        interactive = message.get("interactive") or {}
        chosen = interactive.get(interactive.get("type", "")) or {}
        if interactive.get("type") in ("button_reply", "list_reply") and chosen.get("id"):
            return Incoming(person, button=str(chosen["id"]), language_hint=hint, channel="whatsapp")
    if kind == "button":   # a template's quick reply: its text, as if written
        return Incoming(person, text=(message.get("button") or {}).get("text", ""), language_hint=hint,
                        channel="whatsapp")
    if kind in ("system", "ephemeral"):
        return None
    # image, audio, voice, video, document, sticker, location, contacts, reaction, unsupported
    return Incoming(person, text="", language_hint=hint, channel="whatsapp")


class WhatsAppChannel:
    """The webhook handlers and the sender, around one engine."""

    def __init__(self, settings, engine: Engine, client: GraphClient | None = None):
        self.settings = settings
        self.engine = engine
        self.client = client or GraphClient(settings.whatsapp_api_base_url, settings.whatsapp_phone_number_id,
                                            settings.whatsapp_access_token)

    def mount(self, app: web.Application) -> None:
        app.router.add_get(WEBHOOK_PATH, self.verify)
        app.router.add_post(WEBHOOK_PATH, self.receive)
        app.on_startup.append(lambda _app: self.client.start())
        app.on_cleanup.append(lambda _app: self.client.close())

    async def verify(self, request: web.Request) -> web.Response:
        query = request.query
        token = query.get("hub.verify_token", "")
        if query.get("hub.mode") == "subscribe" and hmac.compare_digest(
                token.encode(), self.settings.whatsapp_verify_token.encode()):
            log.info("WhatsApp webhook verified")
            return web.Response(text=query.get("hub.challenge", ""))
        log.warning("refused a WhatsApp webhook verification: wrong mode or verify token")
        return web.Response(status=403, text="forbidden")

    async def receive(self, request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > MAX_BODY:
            log.warning("refused a WhatsApp webhook post: body too large")
            return web.Response(status=413, text="too large")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            log.warning("refused a WhatsApp webhook post: body too large")
            return web.Response(status=413, text="too large")
        header = request.headers.get("X-Hub-Signature-256")
        if not header:
            log.warning("refused a WhatsApp webhook post: no signature")
            return web.Response(status=401, text="signature required")
        if not signature_ok(self.settings.whatsapp_app_secret, body, header):
            log.warning("refused a WhatsApp webhook post: wrong signature")
            return web.Response(status=403, text="bad signature")
        try:
            update = json.loads(body)
            changes = [c.get("value") or {} for e in update.get("entry", []) for c in e.get("changes", [])]
        except (ValueError, AttributeError, TypeError):
            log.warning("refused a WhatsApp webhook post: not the JSON Meta sends")
            return web.Response(status=400, text="bad request")
        failed = False
        for value in changes:
            for message in value.get("messages") or []:
                if not await self._handle(message):
                    failed = True
            if value.get("statuses"):
                self._statuses(value["statuses"])
        return web.Response(status=500 if failed else 200, text="retry" if failed else "ok")

    def _statuses(self, statuses: list) -> None:
        """Delivery statuses: an announcement's message that finally 'failed' updates its delivery
        record (sent -> failed, with the kind of error). Logged as counts only, never who."""
        failed = 0
        for status in statuses:
            if isinstance(status, dict) and status.get("status") == "failed" and status.get("id"):
                code = ((status.get("errors") or [{}])[0] or {}).get("code")
                kind = {131026: "undeliverable", 131047: "reengagement", 131049: "ecosystem",
                        131050: "opted_out"}.get(code, "failed_later")
                failed += self.engine.db.broadcast_message_failed(str(status["id"]), kind)
        log.debug("%d WhatsApp delivery status(es) received", len(statuses))
        if failed:
            log.info("%d announcement message(s) reported failed by WhatsApp", failed)

    async def _handle(self, message: dict) -> bool:
        """Answer one message, once. False when it failed (Meta will post it again)."""
        message_id, wa_id = str(message.get("id") or ""), str(message.get("from") or "")
        if not message_id or not wa_id.isdigit():
            log.warning("ignored a WhatsApp message without an id or sender")
            return True
        db = self.engine.db
        if not db.claim_message("whatsapp", message_id):
            log.info("a WhatsApp message delivered again was not answered twice")
            return True
        try:
            person = db.person("whatsapp", wa_id)
            incoming = incoming_of(message, person)
            if incoming is None:
                return True
            await self.client.mark_read(message_id)
            response = self.engine.handle(incoming)
            await self.send_response(wa_id, response)
            return True
        except Exception as exc:   # noqa: BLE001 - log without the message, let Meta retry it
            db.release_message("whatsapp", message_id)
            log.error("error while handling a WhatsApp message: %s", type(exc).__name__,
                      exc_info=exc if log.isEnabledFor(logging.DEBUG) else None)
            return False

    async def send_response(self, wa_id: str, response: Response) -> None:
        with use_language(response.language):   # the list button's label, in the answer's language
            messages = [m for reply in response.replies for m in render(reply)]
        for message in messages:
            await self.client.send(wa_id, message)


def build_webhook_app(channels: list) -> web.Application:
    """The bot's one HTTP server, with each channel's routes mounted."""
    app = web.Application(client_max_size=MAX_BODY)
    for channel in channels:
        channel.mount(app)
    return app
