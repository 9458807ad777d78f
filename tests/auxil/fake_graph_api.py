"""A loopback stand-in for the WhatsApp Cloud API (Graph API), for tests (standard library only).

It plays both sides of Meta:

* the Graph API the bot calls: ``POST {base_url}/{phone_number_id}/messages`` with
  ``Authorization: Bearer {token}``. It records every request (:attr:`FakeGraphAPI.calls`) and
  enforces WhatsApp's limits: text bodies of 1 to 4,096 characters; interactive bodies of at most
  1,024; reply buttons: 1 to 3, titles of 1 to 20 characters, distinct ids; lists: 1 to 10 rows in
  all, titles of at most 24, descriptions of at most 72, a button label of at most 20; and the
  24-hour customer-service window (a free-form message to someone who has not written in 24 hours
  is refused with error 131047). A refused request gets Meta's error shape
  ``{"error": {"code": N, "title": ..., "message": ...}}`` with HTTP 400 (131009, invalid
  parameter) and is recorded with ``ok=False``. :meth:`fail_next` makes the next requests answer
  with a chosen WhatsApp error code (130429 rate limit, 131056 pair rate limit, 131026
  undeliverable, 131047 re-engagement, 500s...).
* Meta posting to the bot's webhook: :meth:`post` signs a payload with the app secret as Meta does
  (``X-Hub-Signature-256: sha256=<HMAC-SHA256 of the raw body>``) and posts it; the message builders
  (:func:`text_message`, :func:`button_reply`, :func:`list_reply`, :func:`media_message`) make the
  payloads Meta sends.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN = "EAAG-test-access-token"
PHONE_NUMBER_ID = "109876543210987"
APP_SECRET = "test-app-secret-0123456789"
VERIFY_TOKEN = "test-verify-token"
WINDOW = 24 * 3600


@dataclass
class Call:
    path: str
    payload: dict
    status: int
    answer: dict
    at: float = field(default_factory=time.monotonic)

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def to(self) -> str | None:
        return self.payload.get("to")

    @property
    def text(self) -> str:
        """The visible text: a text message's body, or an interactive message's body."""
        if self.payload.get("type") == "text":
            return self.payload["text"]["body"]
        if self.payload.get("type") == "interactive":
            return self.payload["interactive"]["body"]["text"]
        return ""

    @property
    def choices(self) -> list[dict]:
        """An interactive message's buttons or list rows: [{"id", "title"}, ...]."""
        if self.payload.get("type") != "interactive":
            return []
        action = self.payload["interactive"].get("action", {})
        if "buttons" in action:
            return [b["reply"] for b in action["buttons"]]
        return [row for section in action.get("sections", []) for row in section.get("rows", [])]


def _problems(payload: dict) -> list[str]:
    """Why WhatsApp would refuse this message (empty when it is fine)."""
    problems = []
    kind = payload.get("type", "text")
    if payload.get("messaging_product") != "whatsapp":
        problems.append("messaging_product must be whatsapp")
    if not str(payload.get("to", "")).isdigit():
        problems.append("to must be a phone number")
    if kind == "text":
        body = (payload.get("text") or {}).get("body", "")
        if not 1 <= len(body) <= 4096:
            problems.append(f"text.body has {len(body)} characters (1 to 4096)")
    elif kind == "interactive":
        inter = payload.get("interactive") or {}
        body = (inter.get("body") or {}).get("text", "")
        if not 1 <= len(body) <= 1024:
            problems.append(f"interactive body has {len(body)} characters (1 to 1024)")
        action = inter.get("action") or {}
        if inter.get("type") == "button":
            buttons = action.get("buttons") or []
            if not 1 <= len(buttons) <= 3:
                problems.append(f"{len(buttons)} reply buttons (1 to 3)")
            titles = [b.get("reply", {}).get("title", "") for b in buttons]
            ids = [b.get("reply", {}).get("id", "") for b in buttons]
            problems += [f"button title {t!r} over 20 characters" for t in titles if not 1 <= len(t) <= 20]
            if len(set(ids)) != len(ids) or len(set(titles)) != len(titles):
                problems.append("button ids and titles must be distinct")
            problems += [f"button id over 256 characters" for i in ids if len(i) > 256]
        elif inter.get("type") == "list":
            rows = [r for s in action.get("sections") or [] for r in s.get("rows") or []]
            if not 1 <= len(rows) <= 10:
                problems.append(f"{len(rows)} list rows (1 to 10)")
            if not 1 <= len(action.get("button", "")) <= 20:
                problems.append("list button label must have 1 to 20 characters")
            problems += [f"row title {r.get('title')!r} over 24 characters"
                         for r in rows if not 1 <= len(r.get("title", "")) <= 24]
            problems += ["row description over 72 characters" for r in rows if len(r.get("description", "")) > 72]
            ids = [r.get("id", "") for r in rows]
            if len(set(ids)) != len(ids):
                problems.append("row ids must be distinct")
            problems += ["row id over 200 characters" for i in ids if len(i) > 200]
        else:
            problems.append(f"interactive type {inter.get('type')!r} is not supported here")
    elif kind != "template":
        problems.append(f"message type {kind!r} is not supported here")
    return problems


class FakeGraphAPI:
    def __init__(self, token: str = TOKEN, phone_number_id: str = PHONE_NUMBER_ID,
                 app_secret: str = APP_SECRET):
        self.token = token
        self.phone_number_id = phone_number_id
        self.app_secret = app_secret
        self.calls: list[Call] = []
        self.reads: list[str] = []
        self.server_errors: list[BaseException] = []
        self._failures: list[tuple[int, int]] = []   # (HTTP status, WhatsApp code) for the next requests
        self._last_inbound: dict[str, float] = {}
        self._lock = threading.Condition()
        self._ids = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None

    # -- server ---------------------------------------------------------------------------------

    def __enter__(self) -> "FakeGraphAPI":
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                try:
                    api._answer(self)
                except BaseException as exc:  # noqa: BLE001 - reported by the test fixture
                    api.server_errors.append(exc)
                    raise

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v21.0"

    def _reply(self, handler, status: int, answer: dict) -> None:
        data = json.dumps(answer).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _answer(self, handler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length)
        path = handler.path
        if handler.headers.get("Authorization") != f"Bearer {self.token}":
            return self._reply(handler, 401, {"error": {"code": 190, "title": "Invalid OAuth access token"}})
        if path != f"/v21.0/{self.phone_number_id}/messages":
            return self._reply(handler, 404, {"error": {"code": 100, "title": "Unknown path"}})
        try:
            payload = json.loads(raw)
        except ValueError:
            return self._reply(handler, 400, {"error": {"code": 100, "title": "Invalid JSON"}})
        with self._lock:
            if payload.get("status") == "read":
                self.reads.append(payload.get("message_id"))
                self._lock.notify_all()
                return self._reply(handler, 200, {"success": True})
            status, answer = 200, None
            if self._failures:
                status, code = self._failures.pop(0)
                answer = {"error": {"code": code, "title": "stand-in failure", "message": f"error {code}"}}
            elif problems := _problems(payload):
                status, answer = 400, {"error": {"code": 131009, "title": "Parameter value is not valid",
                                                 "message": "; ".join(problems)}}
            elif payload.get("type") != "template" and (
                    time.time() - self._last_inbound.get(payload["to"], float("-inf"))) > WINDOW:
                status, answer = 400, {"error": {"code": 131047, "title": "Re-engagement message"}}
            if answer is None:
                answer = {"messaging_product": "whatsapp", "contacts": [{"input": payload["to"], "wa_id": payload["to"]}],
                          "messages": [{"id": f"wamid.out{next(self._ids)}"}]}
            self.calls.append(Call(path, payload, status, answer))
            self._lock.notify_all()
        self._reply(handler, status, answer)

    # -- what tests use ---------------------------------------------------------------------------

    def fail_next(self, code: int, status: int = 400, times: int = 1) -> None:
        """The next `times` message sends answer with this WhatsApp error code."""
        with self._lock:
            self._failures += [(status, code)] * times

    def sent(self, wa_id: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.to == wa_id and c.ok]

    def refused(self) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if not c.ok]

    def wait_for(self, predicate, timeout: float = 30.0, start: int = 0) -> Call:
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                for call in self.calls[start:]:
                    if predicate(call):
                        return call
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no matching call; calls: {[c.payload for c in self.calls[start:]]}")
                self._lock.wait(left)

    def wait_quiet(self, seconds: float = 1.0) -> None:
        """Wait until no request came for `seconds`."""
        while True:
            count = len(self.calls)
            time.sleep(seconds)
            if len(self.calls) == count:
                return

    # -- Meta posting to the bot's webhook ------------------------------------------------------

    def sign(self, body: bytes) -> str:
        return "sha256=" + hmac.new(self.app_secret.encode(), body, hashlib.sha256).hexdigest()

    def post(self, url: str, payload: dict | bytes, signature: str | None = "sign") -> tuple[int, str]:
        """POST to the bot's webhook as Meta does; `signature=None` sends none, any other string is
        sent as the header. Returns (HTTP status, body). Records the senders' 24-hour windows."""
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"}
        if signature == "sign":
            headers["X-Hub-Signature-256"] = self.sign(body)
            if isinstance(payload, dict):
                for e in payload.get("entry", []):
                    for c in e.get("changes", []):
                        for m in c.get("value", {}).get("messages", []):
                            with self._lock:
                                self._last_inbound[m["from"]] = time.time()
        elif signature is not None:
            headers["X-Hub-Signature-256"] = signature
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()


_message_ids = itertools.count(1)


def _envelope(wa_id: str, message: dict, name: str = "Maria") -> dict:
    message = {"from": wa_id, "id": f"wamid.test{next(_message_ids)}{int(time.time() * 1000)}",
               "timestamp": str(int(time.time())), **message}
    return {"object": "whatsapp_business_account", "entry": [{"id": "WABA_ID", "changes": [{
        "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "16175550100", "phone_number_id": PHONE_NUMBER_ID},
            "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
            "messages": [message]}}]}]}


def text_message(wa_id: str, body: str) -> dict:
    return _envelope(wa_id, {"type": "text", "text": {"body": body}})


def button_reply(wa_id: str, button_id: str, title: str = "") -> dict:
    return _envelope(wa_id, {"type": "interactive", "interactive": {
        "type": "button_reply", "button_reply": {"id": button_id, "title": title}}})


def list_reply(wa_id: str, row_id: str, title: str = "") -> dict:
    return _envelope(wa_id, {"type": "interactive", "interactive": {
        "type": "list_reply", "list_reply": {"id": row_id, "title": title}}})


def media_message(wa_id: str, kind: str = "voice") -> dict:
    """A voice note (type audio, voice=true), image, sticker, location, contacts or reaction."""
    bodies = {
        "voice": ("audio", {"mime_type": "audio/ogg; codecs=opus", "id": "MEDIA_ID", "voice": True}),
        "image": ("image", {"mime_type": "image/jpeg", "id": "MEDIA_ID", "sha256": "x"}),
        "sticker": ("sticker", {"mime_type": "image/webp", "id": "MEDIA_ID", "animated": False}),
        "location": ("location", {"latitude": 42.36, "longitude": -71.06}),
        "contacts": ("contacts", [{"name": {"formatted_name": "A"}}]),
        "reaction": ("reaction", {"message_id": "wamid.x", "emoji": "👍"}),
    }
    kind_name, body = bodies[kind]
    return _envelope(wa_id, {"type": kind_name, kind_name: body})


def status_update(wa_id: str, message_id: str = "wamid.out1", status: str = "delivered") -> dict:
    return {"object": "whatsapp_business_account", "entry": [{"id": "WABA_ID", "changes": [{
        "field": "messages", "value": {"messaging_product": "whatsapp", "metadata": {
            "display_phone_number": "16175550100", "phone_number_id": PHONE_NUMBER_ID},
            "statuses": [{"id": message_id, "status": status, "timestamp": str(int(time.time())),
                          "recipient_id": wa_id}]}}]}]}


def with_same_id(payload: dict) -> dict:
    """The same webhook delivery again (Meta's retry): same message id."""
    return json.loads(json.dumps(payload))
