"""A loopback stand-in for Twilio's Programmable Messaging, for tests (standard library only).

Both sides of Twilio:

* the REST API the bot calls: ``POST {base_url}/2010-04-01/Accounts/{sid}/Messages.json``, form
  fields ``To``, ``From``, ``Body``, HTTP basic auth (account SID, auth token). Like Twilio it
  answers 401 (code 20003) to wrong credentials, 400 with code 21211 for a ``To`` that is not
  E.164, 21212 for a ``From`` that is not the account's number, 21617 for a body over 1,600
  characters, and 21610 for a number that replied STOP (until it replies START). Accepted messages
  answer 201 with ``sid``, ``status: queued`` and ``num_segments``, counted here on their own
  (GSM-7: 160 a message, 153 a segment when concatenated, extension characters count twice;
  otherwise UCS-2: 70, then 67 UTF-16 code units). Every request is recorded in :attr:`calls`.
  :meth:`fail_next` makes the next sends fail with a status and code.
* Twilio posting to the bot's webhook: :meth:`text` builds the parameters Twilio sends for an
  incoming SMS, signs them (``X-Twilio-Signature``: base64 HMAC-SHA1 with the auth token over the
  URL followed by each parameter's name and value, sorted by name) and posts them form-encoded.
  Twilio's default opt-out handling is played too: STOP (and its synonyms) opts the number out and
  START opts it back in, with Twilio's own confirmation recorded in :attr:`auto_replies`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "test-twilio-auth-token-0123456789"
FROM_NUMBER = "+16175550199"
OPT_OUT = {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout"}
OPT_IN = {"start", "unstop", "yes"}

_BASIC = ("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
          "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
_EXTENSION = "^{}\\[~]|€\f"


def count_segments(body: str) -> tuple[str, int]:
    """(encoding, segments) as carriers count an SMS."""
    if all(ch in _BASIC or ch in _EXTENSION for ch in body):
        septets = len(body) + sum(body.count(ch) for ch in _EXTENSION)
        return "GSM-7", 1 if septets <= 160 else (septets + 152) // 153
    units = len(body.encode("utf-16-be")) // 2
    return "UCS-2", 1 if units <= 70 else (units + 66) // 67


def sign(auth_token: str, url: str, params: dict[str, str]) -> str:
    payload = url + "".join(name + params[name] for name in sorted(params))
    return base64.b64encode(hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()).decode()


@dataclass
class Sent:
    to: str
    body: str
    status: int
    code: int | None
    encoding: str
    segments: int
    at: float = field(default_factory=time.monotonic)

    @property
    def ok(self) -> bool:
        return self.status == 201


class FakeTwilio:
    def __init__(self, account_sid: str = ACCOUNT_SID, auth_token: str = AUTH_TOKEN,
                 from_number: str = FROM_NUMBER):
        self.account_sid, self.auth_token, self.from_number = account_sid, auth_token, from_number
        self.calls: list[Sent] = []
        self.auto_replies: list[tuple[str, str]] = []   # (to, Twilio's own STOP/START answer)
        self.opted_out: set[str] = set()
        self.server_errors: list[str] = []
        self._failures: list[tuple[int, int]] = []
        self._lock = threading.Condition()
        self._ids = itertools.count(1)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                try:
                    fake._handle(self)
                except Exception as exc:   # noqa: BLE001 - a bug in the stand-in shows in the test
                    fake.server_errors.append(repr(exc))
                    raise

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> "FakeTwilio":
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- the REST API ---------------------------------------------------------------------------

    def _reply(self, handler, status: int, body: dict) -> None:
        raw = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(raw)))
        handler.end_headers()
        handler.wfile.write(raw)

    def _handle(self, handler) -> None:
        raw = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if handler.headers.get("Authorization") != expected:
            return self._reply(handler, 401, {"code": 20003, "message": "Authenticate", "status": 401})
        if handler.path != f"/2010-04-01/Accounts/{self.account_sid}/Messages.json":
            return self._reply(handler, 404, {"code": 20404, "message": "Not found", "status": 404})
        form = dict(urllib.parse.parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        to, body = form.get("To", ""), form.get("Body", "")
        encoding, segments = count_segments(body)
        with self._lock:
            status, code = 201, None
            if self._failures:
                status, code = self._failures.pop(0)
            elif not re.fullmatch(r"\+[1-9]\d{6,14}", to):
                status, code = 400, 21211
            elif form.get("From") != self.from_number:
                status, code = 400, 21212
            elif not body or len(body) > 1600:
                status, code = 400, 21617
            elif to in self.opted_out:
                status, code = 400, 21610
            self.calls.append(Sent(to, body, status, code, encoding, segments))
            self._lock.notify_all()
        if status == 201:
            self._reply(handler, 201, {"sid": f"SM{next(self._ids):032d}", "status": "queued", "to": to,
                                       "from": self.from_number, "body": body, "num_segments": str(segments)})
        else:
            self._reply(handler, status, {"code": code, "message": f"error {code}", "status": status})

    # -- what tests use ---------------------------------------------------------------------------

    def fail_next(self, status: int, code: int, times: int = 1) -> None:
        with self._lock:
            self._failures += [(status, code)] * times

    def sent(self, to: str) -> list[Sent]:
        with self._lock:
            return [c for c in self.calls if c.to == to and c.ok]

    def wait_for(self, predicate, timeout: float = 30.0, start: int = 0) -> Sent:
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                for call in self.calls[start:]:
                    if predicate(call):
                        return call
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no matching SMS; sent: {[(c.to, c.body[:60]) for c in self.calls[start:]]}")
                self._lock.wait(left)

    def wait_quiet(self, seconds: float = 1.5) -> None:
        while True:
            count = len(self.calls)
            time.sleep(seconds)
            if len(self.calls) == count:
                return

    # -- Twilio posting to the bot's webhook ------------------------------------------------------

    def params(self, number: str, body: str) -> dict[str, str]:
        return {"ToCountry": "US", "ToState": "MA", "SmsMessageSid": (sid := f"SM{time.time_ns():032d}"[-34:]),
                "NumMedia": "0", "ToCity": "BOSTON", "FromZip": "", "SmsSid": sid, "FromState": "",
                "SmsStatus": "received", "FromCity": "", "Body": body, "FromCountry": "", "To": self.from_number,
                "ToZip": "", "NumSegments": str(count_segments(body)[1]), "MessageSid": sid,
                "AccountSid": self.account_sid, "From": number, "ApiVersion": "2010-04-01"}

    def post(self, url: str, params: dict[str, str], signature: str | None = "sign",
             signed_url: str | None = None) -> tuple[int, str]:
        """POST form-encoded to the bot as Twilio does; `signature=None` sends no signature, any other
        string is sent as it is; `signed_url` is the URL Twilio believes it called (a proxy's)."""
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if signature == "sign":
            headers["X-Twilio-Signature"] = sign(self.auth_token, signed_url or url, params)
        elif signature is not None:
            headers["X-Twilio-Signature"] = signature
        request = urllib.request.Request(url, data=urllib.parse.urlencode(params).encode(), headers=headers,
                                         method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def text(self, url: str, number: str, body: str, **kwargs) -> tuple[int, str]:
        """An incoming SMS from `number`, with Twilio's own opt-out handling first."""
        keyword = body.strip().lower()
        with self._lock:
            if keyword in OPT_OUT:
                self.opted_out.add(number)
                self.auto_replies.append((number, "You have successfully been unsubscribed."))
            elif keyword in OPT_IN:
                if number in self.opted_out:
                    self.auto_replies.append((number, "You have successfully been re-subscribed."))
                self.opted_out.discard(number)
        return self.post(url, self.params(number, body), **kwargs)
