"""A fake Telegram Bot API server for tests (standard library only).

:class:`FakeBotAPI` serves a small but faithful subset of the Telegram Bot API over real HTTP on
``127.0.0.1`` (random free port), so that tests can drive the *real* python-telegram-bot stack
(``telegram.Bot``, ``telegram.ext.Application``, its ``Updater`` with long polling, rate limiters,
error handlers ...) without any network::

    from telegram.ext import Application

    with FakeBotAPI() as api:
        app = (
            Application.builder()
            .token(api.token)
            .base_url(api.base_url)
            .base_file_url(api.base_file_url)
            .build()
        )
        ...
        api.push_message(42, "/start")
        call = api.wait_for(lambda c: c.method == "sendMessage" and c.chat_id == 42)
        assert "Welcome" in call.params["text"]

Wire format (as produced by PTB's ``HTTPXRequest``, see ``telegram/request``):

* every API call is ``POST {base_url}{token}/{method}``;
* parameters are form fields (``application/x-www-form-urlencoded``): string values are sent
  as they are, every other value (ints, bools, lists, dicts such as ``reply_markup``) as a JSON
  string; with files the body is ``multipart/form-data`` instead (same fields, plus file parts);
* the answer is ``{"ok": true, "result": ...}`` with HTTP 200, or
  ``{"ok": false, "error_code": N, "description": "...", "parameters": {...}}`` with HTTP
  status ``N``. PTB maps these to exceptions: 429 with ``parameters.retry_after`` ->
  ``RetryAfter``; 403 -> ``Forbidden``; 400 -> ``BadRequest``; 401 and 404 -> ``InvalidToken``;
  409 -> ``Conflict``; anything else (500, 502, ...) -> ``NetworkError``.

Recorded calls (:attr:`FakeBotAPI.calls`) hold the decoded parameters: JSON values are parsed
(``reply_markup`` becomes a dict, ``chat_id`` an int) while parameters that the Bot API defines as
strings (``text``, ``caption``, ``parse_mode``, ...) are kept verbatim, so a message text of
``"123"`` stays a string.

Injecting faults (the ways Telegram and the network fail, for robustness tests):

* ``api.fail_next(method, error_code=..., retry_after=..., description=..., chat_id=..., times=...)``
  answers the next calls with a Bot API error: 429 with ``retry_after`` (PTB: ``RetryAfter``),
  500/502 (``NetworkError``), 400 "query is too old ..." (``BadRequest``), 403 (``Forbidden``) ...
* ``api.delay_next(method, seconds, chat_id=..., times=...)``: the call is handled at once (a
  message is created and recorded) but its answer is sent only after ``seconds``: a slow API, or
  with ``seconds`` above the client's read timeout, a request that timed out *after* it arrived.
* ``api.drop_next(method, chat_id=..., times=..., handled=True)``: the connection is closed
  without an answer. With ``handled=True`` the call was carried out first (the message *was*
  delivered, the client cannot know); with ``handled=False`` it was not (recorded with
  ``error_code`` 0).
* ``api.push_raw_update(update)``: queue an update exactly as given (plus ``update_id``), with
  no check: e.g. ``{"message": {"message_id": 1, "date": "x", "chat": {...}}}``, which
  python-telegram-bot cannot parse.
* ``api.block_chat(chat_id)`` (403 on sends) and ``api.enforce_rate_limits(...)`` (Telegram's
  flood limits, 429 beyond them) as below.

Each rule applies to the next matching calls only (``times``), in the order the rules were added.

Known simplifications (documented so that tests do not rely on them):

* texts are stored as sent: HTML/Markdown is not parsed into entities (only the 4096-character
  limit is checked, on the text with HTML tags removed when ``parse_mode`` is HTML);
* unknown chats are accepted (a positive id is taken as a private chat, a negative one as a
  group/supergroup); use :meth:`FakeBotAPI.fail_next` to simulate "chat not found";
* ``allowed_updates`` filters updates only when given explicitly; Telegram's default exclusion
  of ``chat_member``/``message_reaction`` updates is not emulated;
* a webhook can be set and is reported by ``getWebhookInfo`` (and makes ``getUpdates`` answer
  409 like Telegram does), but updates are never posted to it.
"""

from __future__ import annotations

import asyncio
import copy
import html
import itertools
import json
import re
import socket
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = ["Call", "FakeBotAPI", "FakeBotAPIError", "UploadedFile"]

JSONDict = dict[str, Any]
Predicate = Callable[["Call"], bool]

#: Bot API parameters whose type is String: they are sent verbatim (not JSON encoded) by PTB and
#: must not be JSON-decoded (a text "123" must stay "123").
STRING_PARAMS: frozenset[str] = frozenset(
    {
        "action", "address", "animation", "audio", "business_connection_id", "callback_query_id",
        "caption", "currency", "custom_description", "custom_emoji_id", "custom_title",
        "description", "document", "emoji", "error_message", "explanation",
        "explanation_parse_mode", "file_id", "first_name", "format", "foursquare_id",
        "foursquare_type", "game_short_name", "gift_id", "google_place_id", "google_place_type",
        "icon_custom_emoji_id", "inline_message_id", "invite_link", "ip_address", "language_code",
        "last_name", "message_effect_id", "name", "next_offset", "parse_mode", "payload",
        "phone_number", "photo", "pre_checkout_query_id", "provider_token", "query", "question",
        "question_parse_mode", "result_id", "secret_token", "shipping_query_id",
        "short_description", "start_parameter", "sticker", "sticker_set_name", "switch_pm_text",
        "switch_pm_parameter", "text", "text_parse_mode", "thumbnail", "title", "url", "vcard",
        "video", "video_note", "voice", "web_app_query_id", "emoji_status_custom_emoji_id",
    }
)

#: Methods that deliver something to a chat: blocked by :meth:`FakeBotAPI.block_chat`.
_EXTRA_DELIVERY_METHODS = frozenset(
    {"copymessage", "copymessages", "forwardmessage", "forwardmessages"}
)

_DEFAULT_DESCRIPTIONS: dict[int, str] = {
    400: "Bad Request: chat not found",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running",
    500: "Internal Server Error",
    502: "Bad Gateway",
}

_BLOCKED_DESCRIPTION = "Forbidden: bot was blocked by the user"
_NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
_MAX_TEXT_LENGTH = 4096
_MAX_CALLBACK_DATA_BYTES = 64
_UPDATE_TYPES_WITH_MESSAGE = (
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "business_message",
    "edited_business_message",
)


class FakeBotAPIError(Exception):
    """Raise from a handler registered with :meth:`FakeBotAPI.register_method` to answer with
    a Bot API error (``{"ok": false, "error_code": ..., "description": ...}``).

    Args:
        error_code: HTTP status / Bot API error code (400, 403, 429, 500 ...).
        description: Error description; Telegram-like default for the code if omitted.
        retry_after: For 429: seconds to put in ``parameters.retry_after``.
    """

    def __init__(
        self, error_code: int, description: str | None = None, retry_after: int | None = None
    ) -> None:
        self.error_code = error_code
        self.retry_after = retry_after
        if error_code == 429 and retry_after is None:
            self.retry_after = 1
        if description is None:
            description = _default_description(error_code, self.retry_after)
        self.description = description
        super().__init__(f"{error_code}: {description}")

    def to_payload(self) -> JSONDict:
        """The JSON body Telegram would answer with."""
        payload: JSONDict = {
            "ok": False,
            "error_code": self.error_code,
            "description": self.description,
        }
        if self.retry_after is not None:
            payload["parameters"] = {"retry_after": self.retry_after}
        return payload


def _default_description(error_code: int, retry_after: int | None = None) -> str:
    if error_code == 429:
        return f"Too Many Requests: retry after {retry_after if retry_after is not None else 1}"
    if error_code in _DEFAULT_DESCRIPTIONS:
        return _DEFAULT_DESCRIPTIONS[error_code]
    try:
        return HTTPStatus(error_code).phrase
    except ValueError:
        return f"Error {error_code}"


@dataclass
class UploadedFile:
    """A file part of a multipart request.

    Attributes:
        name: The form field name (e.g. ``"document"`` or an ``attach://`` name).
        filename: The file name given by the client.
        content_type: The part's content type.
        data: The file's bytes.
    """

    name: str
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass
class Call:
    """One request received by :class:`FakeBotAPI`.

    Attributes:
        method: Bot API method name as sent (e.g. ``"sendMessage"``).
        params: Decoded parameters (JSON values parsed, string parameters verbatim). File parts
            of multipart requests are in :attr:`files`, not here.
        time: ``time.time()`` when the request arrived.
        error_code: ``None`` if answered ``ok``, else the error code answered (injected failures,
            blocked chats, rate limits, validation errors, unknown method, wrong token).
        description: Error description when :attr:`error_code` is set.
        result: The ``result`` answered (``None`` for errors or while a long poll is pending).
        raw: The raw (undecoded) string form fields.
        files: Uploaded file parts by field name.
    """

    method: str
    params: JSONDict
    time: float
    error_code: int | None = None
    description: str | None = None
    result: Any = field(default=None, repr=False)
    raw: dict[str, str] = field(default_factory=dict, repr=False)
    files: dict[str, UploadedFile] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        """``True`` if the call was answered successfully."""
        return self.error_code is None

    @property
    def chat_id(self) -> int | str | None:
        """The ``chat_id`` parameter, if any."""
        return self.params.get("chat_id")

    @property
    def text(self) -> str | None:
        """The ``text`` parameter, if any."""
        return self.params.get("text")


@dataclass
class _FailureRule:
    method: str  # lower case
    error_code: int
    description: str | None
    retry_after: int | None
    chat_id: int | str | None
    remaining: int


@dataclass
class _FaultRule:
    method: str  # lower case
    kind: str  # "delay" | "drop"
    seconds: float
    handled: bool
    chat_id: int | str | None
    remaining: int


def _norm_chat(value: Any) -> int | str | None:
    """Normalise a chat id as received (int, numeric string or "@username")."""
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return value
    try:
        return int(str(value))
    except ValueError:
        return str(value)


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _decode_value(name: str, value: str) -> Any:
    if name in STRING_PARAMS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _parse_multipart(
    body: bytes, content_type: str
) -> tuple[dict[str, str], dict[str, UploadedFile]]:
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not match:
        raise ValueError("multipart request without boundary")
    delimiter = b"--" + match.group(1).encode("latin-1")
    fields: dict[str, str] = {}
    files: dict[str, UploadedFile] = {}
    for part in body.split(delimiter)[1:]:
        if part.startswith(b"--"):
            break  # closing delimiter
        if part.startswith(b"\r\n"):
            part = part[2:]
        if part.endswith(b"\r\n"):
            part = part[:-2]
        head, sep, data = part.partition(b"\r\n\r\n")
        if not sep:
            continue
        headers: dict[str, str] = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, _, val = line.partition(":")
            headers[key.strip().lower()] = val.strip()
        disposition = headers.get("content-disposition", "")
        name_match = re.search(r'(?:^|;)\s*name="([^"]*)"', disposition)
        if not name_match:
            continue
        name = unquote(name_match.group(1))
        filename_match = re.search(r'filename="([^"]*)"', disposition)
        part_type = headers.get("content-type")
        if filename_match or part_type:
            files[name] = UploadedFile(
                name=name,
                filename=unquote(filename_match.group(1)) if filename_match else None,
                content_type=part_type,
                data=data,
            )
        else:
            fields[name] = data.decode("utf-8", "replace")
    return fields, files


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512

    def __init__(self, api: FakeBotAPI) -> None:
        self.api = api
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a reverse DNS lookup that can hang on a
        # machine without network; we know our name.
        TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Client went away (cancelled long poll, closed pool ...): nothing worth printing.
        return


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    server_version = "FakeBotAPI/1.0"

    def setup(self) -> None:
        super().setup()
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:  # pragma: no cover
            pass
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return  # keep stderr quiet (and fast)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size_line = self.rfile.readline()
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Error"
        head = (
            f"HTTP/1.1 {status} {phrase}\r\n"
            f"Server: {self.server_version}\r\n"
            f"Content-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"Connection: {'close' if self.close_connection else 'keep-alive'}\r\n\r\n"
        ).encode("latin-1")
        self.wfile.write(head + body)  # one write: no Nagle/delayed-ACK stalls

    def _handle(self, http_method: str) -> None:
        split = urlsplit(self.path)
        body = self._read_body() if http_method == "POST" else b""
        api = self.server.api
        api._local.fault = None
        status, payload, content_type = api._handle_http(
            http_method,
            unquote(split.path),
            split.query,
            self.headers.get("Content-Type", ""),
            body,
        )
        fault: _FaultRule | None = api._local.fault
        if fault is not None and fault.kind == "drop":
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if fault is not None and fault.kind == "delay":
            deadline = time.monotonic() + fault.seconds
            while time.monotonic() < deadline and not api._stopped:
                time.sleep(0.02)
        self._send(status, payload, content_type)

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def do_GET(self) -> None:  # noqa: N802
        self._handle("GET")


class FakeBotAPI:
    """A fake Telegram Bot API server on ``127.0.0.1`` for tests (standard library only).

    Runs an :class:`http.server.ThreadingHTTPServer` in a daemon thread; all state is guarded by
    one :class:`threading.Condition`, so the helper methods may be called from any thread
    (including from inside an asyncio event loop: none of them blocks except :meth:`wait_for`).

    Args:
        token: The bot token; requests with another token are answered 401 Unauthorized.
        bot_username: The bot's username (without ``@``) returned by ``getMe``.
        bot_first_name: The bot's first name returned by ``getMe``.

    Usage::

        with FakeBotAPI() as api:
            bot = telegram.Bot(api.token, base_url=api.base_url, base_file_url=api.base_file_url)
    """

    def __init__(
        self,
        token: str = "123456:TEST-TOKEN",
        bot_username: str = "pmc_test_bot",
        *,
        bot_first_name: str = "Test Bot",
    ) -> None:
        prefix = token.split(":", 1)[0]
        if not prefix.isdigit():
            raise ValueError(f"token must look like '<bot id>:<secret>', got {token!r}")
        self.token: str = token
        self.bot_id: int = int(prefix)
        self.bot_username: str = bot_username
        self.bot_first_name: str = bot_first_name

        self._cond = threading.Condition(threading.RLock())
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopped = True

        self._calls: list[Call] = []
        self._updates: list[JSONDict] = []  # not yet confirmed, ascending update_id
        self._next_update_id = 1
        self._max_fetched_update_id = 0
        self._msg_counters: dict[int | str, int] = {}
        self._messages: dict[tuple[int | str, int], JSONDict] = {}
        self._chats: dict[int | str, JSONDict] = {}
        self._users: dict[int, JSONDict] = {}
        self._callback_ids: set[str] = set()
        self._callback_counter = itertools.count(1)
        self._file_counter = itertools.count(1)
        self._files: dict[str, JSONDict] = {}  # file_id -> Bot API File dict
        self._file_paths: dict[str, bytes] = {}
        self._failures: list[_FailureRule] = []
        self._faults: list[_FaultRule] = []
        self._local = threading.local()  # the fault (delay, drop) chosen for this thread's request
        self._blocked: set[int | str] = set()
        self._rate_limits: tuple[int, int] | None = None
        self._rate_total: deque[float] = deque()
        self._rate_chat: dict[int | str, deque[float]] = {}
        self.rate_limited_count: int = 0
        self._commands: dict[tuple[str, str], list[JSONDict]] = {}
        self._webhook: JSONDict = {}
        self._custom: dict[str, tuple[str, Callable[[JSONDict], Any]]] = {}
        self.server_errors: list[BaseException] = []
        """Exceptions raised inside the fake itself while answering (bugs in the fake or in a
        handler given to :meth:`register_method`); such requests are answered 500."""

        self._handlers: dict[str, tuple[str, Callable[[JSONDict, Call], Any]]] = {}
        for name, handler in [
            ("getMe", self._m_get_me),
            ("getUpdates", self._m_get_updates),
            ("deleteWebhook", self._m_delete_webhook),
            ("setWebhook", self._m_set_webhook),
            ("getWebhookInfo", self._m_get_webhook_info),
            ("sendMessage", self._m_send_message),
            ("editMessageText", self._m_edit_message_text),
            ("editMessageReplyMarkup", self._m_edit_message_reply_markup),
            ("answerCallbackQuery", self._m_answer_callback_query),
            ("setMyCommands", self._m_set_my_commands),
            ("getMyCommands", self._m_get_my_commands),
            ("deleteMyCommands", self._m_delete_my_commands),
            ("deleteMessage", self._m_delete_message),
            ("deleteMessages", self._m_delete_messages),
            ("sendChatAction", self._m_true),
            ("leaveChat", self._m_true),
            ("close", self._m_true),
            ("logOut", self._m_true),
            ("getFile", self._m_get_file),
            ("sendPhoto", self._m_send_media),
            ("sendDocument", self._m_send_media),
            ("sendSticker", self._m_send_media),
            ("sendVideo", self._m_send_media),
            ("sendAudio", self._m_send_media),
            ("sendVoice", self._m_send_media),
            ("sendAnimation", self._m_send_media),
        ]:
            self._handlers[name.lower()] = (name, handler)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeBotAPI:
        """Bind a free port on 127.0.0.1 and serve in a daemon thread. Returns ``self``."""
        if self._server is not None:
            raise RuntimeError("FakeBotAPI already started")
        self._server = _Server(self)
        self._stopped = False
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"FakeBotAPI:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: wakes pending long polls, closes the socket and open connections.

        Idempotent. Recorded calls stay readable after stopping.
        """
        server = self._server
        if server is None:
            return
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        server.shutdown()
        server.server_close()
        with server.connections_lock:
            connections = list(server.connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeBotAPI:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The TCP port served on (only while started)."""
        if self._server is None:
            raise RuntimeError("FakeBotAPI is not started")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/bot``: pass to ``Bot(base_url=...)`` / ``.base_url(...)``."""
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        """``http://127.0.0.1:PORT/file/bot``: pass to ``.base_file_url(...)``."""
        return f"http://127.0.0.1:{self.port}/file/bot"

    @property
    def bot_user(self) -> JSONDict:
        """The bot as a Bot API ``User`` dict (the ``from`` of the bot's messages)."""
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.bot_first_name,
            "username": self.bot_username,
        }

    # ------------------------------------------------------------------ incoming updates

    def push_message(
        self,
        user_id: int,
        text: str,
        *,
        language_code: str | None = "en",
        chat_id: int | None = None,
        chat_type: str = "private",
        first_name: str = "Test",
        username: str | None = None,
        entities: list[JSONDict] | None = None,
        extra: JSONDict | None = None,
    ) -> JSONDict:
        """Queue an update with a text message from a user; returns the update dict.

        Args:
            user_id: Sender's user id.
            text: Message text. If it starts with ``/`` and ``entities`` is not given, a
                ``bot_command`` entity is added for the first word, like Telegram does (so that
                ``CommandHandler`` matches).
            language_code: The sender's ``language_code`` (``None`` to omit it).
            chat_id: Chat id; defaults to ``user_id`` (private chat).
            chat_type: ``"private"``, ``"group"``, ``"supergroup"`` or ``"channel"`` (the latter
                produces a ``channel_post`` without ``from``).
            first_name: Sender's first name.
            username: Sender's username (optional).
            entities: Explicit message entities (overrides the automatic command entity).
            extra: Extra fields merged into the message dict (e.g. ``reply_to_message``).
        """
        chat_id = user_id if chat_id is None else chat_id
        user = self._make_user(user_id, first_name, username, language_code)
        if entities is None and text.startswith("/"):
            command = text.split(maxsplit=1)[0] if text.strip() else "/"
            entities = [{"type": "bot_command", "offset": 0, "length": _utf16_len(command)}]
        with self._cond:
            chat = self._make_chat(chat_id, chat_type, user)
            message: JSONDict = {
                "message_id": self._new_message_id(chat_id),
                "date": int(time.time()),
                "chat": chat,
                "text": text,
            }
            if chat_type == "channel":
                message["sender_chat"] = chat
                kind = "channel_post"
            else:
                message["from"] = user
                kind = "message"
            if entities:
                message["entities"] = entities
            if extra:
                message.update(extra)
            self._messages[(chat_id, message["message_id"])] = message
            return self._enqueue({kind: message})

    def push_callback(
        self,
        user_id: int,
        data: str,
        *,
        message_id: int | None = None,
        chat_id: int | None = None,
        language_code: str | None = "en",
        first_name: str | None = None,
    ) -> JSONDict:
        """Queue a ``callback_query`` update (an inline button press); returns the update dict.

        Args:
            user_id: Id of the user who pressed the button.
            data: The button's ``callback_data``.
            message_id: The bot message the button belongs to. If it is known (sent through
                this fake), that message (with its current text and keyboard) is attached;
                otherwise a minimal message "sent by the bot" with this id (or a new id) is
                created and stored (text ``"Choose:"``, a keyboard with one button carrying
                ``data``), so that ``editMessageText`` on it works.
            chat_id: Chat of that message; defaults to ``user_id``.
            language_code: The user's ``language_code``.
            first_name: The user's first name (default: as last pushed, else ``"Test"``).
        """
        chat_id = user_id if chat_id is None else chat_id
        with self._cond:
            known = self._users.get(user_id, {})
            user = self._make_user(
                user_id,
                first_name or known.get("first_name", "Test"),
                known.get("username"),
                language_code,
            )
            message = (
                self._messages.get((chat_id, message_id)) if message_id is not None else None
            )
            if message is None:
                if message_id is None:
                    message_id = self._new_message_id(chat_id)
                else:
                    self._bump_message_id(chat_id, message_id)
                message = {
                    "message_id": message_id,
                    "from": self.bot_user,
                    "chat": self._make_chat(
                        chat_id, "private" if _is_positive(chat_id) else "supergroup", user
                    ),
                    "date": int(time.time()),
                    "text": "Choose:",
                    "reply_markup": {"inline_keyboard": [[{"text": data, "callback_data": data}]]},
                }
                self._messages[(chat_id, message_id)] = message
            query_id = str(4_000_000_000_000_000 + next(self._callback_counter))
            self._callback_ids.add(query_id)
            callback = {
                "id": query_id,
                "from": user,
                "chat_instance": str(abs(hash((self.bot_id, chat_id))) % 10**18 or 1),
                "data": data,
                "message": copy.deepcopy(message),
            }
            return self._enqueue({"callback_query": callback})

    def push_update(self, update: JSONDict) -> JSONDict:
        """Queue an arbitrary update (``message`` with a sticker/photo, ``edited_message``,
        ``channel_post``, ``my_chat_member``, ...) given *without* ``update_id``; the fake adds
        the next ``update_id`` and returns the full update dict. Messages in it are stored so
        that the bot can edit/delete/reply to them."""
        update = copy.deepcopy(update)
        update.pop("update_id", None)
        with self._cond:
            for kind in _UPDATE_TYPES_WITH_MESSAGE:
                message = update.get(kind)
                if isinstance(message, dict) and "message_id" in message and "chat" in message:
                    chat_id = message["chat"].get("id")
                    self._chats.setdefault(chat_id, message["chat"])
                    self._bump_message_id(chat_id, int(message["message_id"]))
                    self._messages[(chat_id, int(message["message_id"]))] = message
            return self._enqueue(update)

    def pending_updates(self) -> int:
        """Number of queued updates not yet fetched by any ``getUpdates`` call."""
        with self._cond:
            return sum(1 for u in self._updates if u["update_id"] > self._max_fetched_update_id)

    # ------------------------------------------------------------------ recorded calls

    @property
    def calls(self) -> list[Call]:
        """A snapshot list of all recorded calls (oldest first), failed ones included."""
        with self._cond:
            return list(self._calls)

    def requests(self, method: str) -> list[Call]:
        """Recorded calls of ``method`` (case-insensitive), failed ones included."""
        wanted = method.lower()
        return [c for c in self.calls if c.method.lower() == wanted]

    def sent_texts(self, chat_id: int | str | None = None) -> list[str]:
        """Texts of the *successful* ``sendMessage`` calls (optionally only to ``chat_id``)."""
        wanted = _norm_chat(chat_id)
        return [
            str(c.params.get("text", ""))
            for c in self.requests("sendMessage")
            if c.ok and (wanted is None or _norm_chat(c.chat_id) == wanted)
        ]

    def clear_calls(self) -> None:
        """Forget all recorded calls."""
        with self._cond:
            self._calls.clear()

    def wait_for(
        self, predicate: Predicate | str, timeout: float = 10.0, *, start: int = 0
    ) -> Call:
        """Block until a recorded call satisfies ``predicate`` and return it.

        Args:
            predicate: ``Callable[[Call], bool]``, or a method name (matches any call of it).
            timeout: Seconds to wait.
            start: Only consider calls from this index of :attr:`calls` on (e.g.
                ``len(api.calls)`` taken before triggering the action).

        Raises:
            AssertionError: On timeout, listing the recorded method names.
        """
        pred = self._as_predicate(predicate)
        deadline = time.monotonic() + timeout
        index = start
        while True:
            call, seen = self._scan(pred, index)
            if call is not None:
                return call
            index = max(index, seen)
            with self._cond:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(self._timeout_message(predicate, timeout))
                if len(self._calls) == seen:
                    self._cond.wait(remaining)

    def _scan(self, pred: Predicate, index: int) -> tuple[Call | None, int]:
        """The first recorded call from ``index`` on that satisfies ``pred``, and how many
        calls were recorded when looking (where the next scan should start)."""
        with self._cond:
            snapshot = self._calls[index:]
            seen = len(self._calls)
        for call in snapshot:
            if pred(call):
                return call, seen
        return None, seen

    async def await_call(
        self, predicate: Predicate | str, timeout: float = 10.0, *, start: int = 0
    ) -> Call:
        """Async twin of :meth:`wait_for` for use inside the event loop running the bot:
        polls with ``asyncio.sleep`` so the loop keeps serving the bot meanwhile."""
        pred = self._as_predicate(predicate)
        deadline = time.monotonic() + timeout
        index = start
        while True:
            call, index = self._scan(pred, index)
            if call is not None:
                return call
            if time.monotonic() >= deadline:
                raise AssertionError(self._timeout_message(predicate, timeout))
            await asyncio.sleep(0.005)

    # ------------------------------------------------------------------ state inspection

    def get_message(self, chat_id: int | str, message_id: int) -> JSONDict | None:
        """The current state of a stored message (after edits), or ``None`` (unknown/deleted)."""
        with self._cond:
            message = self._messages.get((_norm_chat(chat_id), message_id))
            return copy.deepcopy(message) if message is not None else None

    def messages(self, chat_id: int | str) -> list[JSONDict]:
        """All stored (not deleted) messages of a chat, by ``message_id``; user messages and
        bot messages alike, in their current (edited) state."""
        wanted = _norm_chat(chat_id)
        with self._cond:
            return [
                copy.deepcopy(m)
                for (cid, _), m in sorted(self._messages.items(), key=lambda kv: kv[0][1])
                if cid == wanted
            ]

    def commands(
        self, scope: JSONDict | Any | None = None, language_code: str = ""
    ) -> list[JSONDict]:
        """Commands set with ``setMyCommands`` for ``(scope, language_code)``.

        Args:
            scope: A ``BotCommandScope`` dict (``{"type": "default"}`` when ``None``) or a PTB
                ``BotCommandScope`` object.
            language_code: ``""`` for the default language.
        """
        with self._cond:
            return copy.deepcopy(self._commands.get(self._command_key(scope, language_code), []))

    @property
    def all_commands(self) -> dict[tuple[str, str], list[JSONDict]]:
        """Every command list set, keyed by ``(scope as sorted JSON, language_code)``."""
        with self._cond:
            return copy.deepcopy(self._commands)

    @property
    def webhook(self) -> JSONDict:
        """The webhook settings from the last ``setWebhook`` (``{}`` when none is set)."""
        with self._cond:
            return dict(self._webhook)

    def add_file(
        self, content: bytes, *, file_id: str | None = None, file_path: str | None = None
    ) -> JSONDict:
        """Make a file downloadable: ``getFile(file_id)`` then a GET on ``base_file_url``.
        Returns the Bot API ``File`` dict."""
        with self._cond:
            return self._store_file(content, file_id=file_id, file_path=file_path)

    def register_method(self, method: str, handler: Callable[[JSONDict], Any]) -> None:
        """Answer ``method`` (case-insensitive) with ``handler(params)``'s return value as
        ``result``; the handler may raise :class:`FakeBotAPIError`. Overrides built-in methods.
        The handler runs under the fake's lock: keep it short and do not block."""
        with self._cond:
            self._custom[method.lower()] = (method, handler)

    # ------------------------------------------------------------------ failure injection

    def fail_next(
        self,
        method: str,
        *,
        error_code: int = 429,
        description: str | None = None,
        retry_after: int | None = None,
        chat_id: int | str | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` (only those to ``chat_id`` if given)
        with an error instead of handling them.

        Args:
            method: Bot API method name (case-insensitive), e.g. ``"sendMessage"``.
            error_code: 429, 403, 400, 500, 502, 409 ...
            description: Error description; Telegram-like default for the code if omitted
                ("Too Many Requests: retry after N", "Forbidden: bot was blocked by the user",
                "Bad Request: chat not found", "Internal Server Error", ...).
            retry_after: For 429, ``parameters.retry_after`` (default 1). Ignored otherwise.
            chat_id: Only fail calls whose ``chat_id`` parameter equals this.
            times: Number of calls to fail.
        """
        if times < 1:
            raise ValueError("times must be >= 1")
        with self._cond:
            self._failures.append(
                _FailureRule(
                    method=method.lower(),
                    error_code=error_code,
                    description=description,
                    retry_after=(retry_after if retry_after is not None else 1)
                    if error_code == 429
                    else None,
                    chat_id=_norm_chat(chat_id),
                    remaining=times,
                )
            )

    def delay_next(
        self, method: str, seconds: float, *, chat_id: int | str | None = None, times: int = 1
    ) -> None:
        """Carry out the next ``times`` calls of ``method`` (to ``chat_id`` if given) at once but
        send their answers only after ``seconds`` (the calls of others are not held up)."""
        self._add_fault(method, "delay", seconds, True, chat_id, times)

    def drop_next(
        self,
        method: str,
        *,
        chat_id: int | str | None = None,
        times: int = 1,
        handled: bool = True,
    ) -> None:
        """Close the connection of the next ``times`` calls of ``method`` without an answer;
        with ``handled`` the call was carried out first (e.g. the message was delivered)."""
        self._add_fault(method, "drop", 0.0, handled, chat_id, times)

    def _add_fault(
        self,
        method: str,
        kind: str,
        seconds: float,
        handled: bool,
        chat_id: int | str | None,
        times: int,
    ) -> None:
        if times < 1:
            raise ValueError("times must be >= 1")
        with self._cond:
            self._faults.append(
                _FaultRule(method.lower(), kind, seconds, handled, _norm_chat(chat_id), times)
            )

    def push_raw_update(self, update: JSONDict) -> JSONDict:
        """Queue ``update`` as it is (the fake only adds ``update_id``): for updates that
        python-telegram-bot cannot parse. Returns the queued update."""
        update = copy.deepcopy(update)
        update.pop("update_id", None)
        with self._cond:
            return self._enqueue(update)

    def block_chat(self, chat_id: int | str) -> None:
        """Until :meth:`unblock_chat`, every ``send*`` (and ``copy``/``forward``) call to this
        chat answers 403 "Forbidden: bot was blocked by the user"."""
        with self._cond:
            self._blocked.add(_norm_chat(chat_id))  # type: ignore[arg-type]

    def unblock_chat(self, chat_id: int | str) -> None:
        """Undo :meth:`block_chat`."""
        with self._cond:
            self._blocked.discard(_norm_chat(chat_id))  # type: ignore[arg-type]

    def enforce_rate_limits(
        self, total_per_second: int = 30, per_chat_per_second: int = 1, *, enabled: bool = True
    ) -> None:
        """Turn on (or off with ``enabled=False``) Telegram-like flood limits.

        When on, a message-sending call (``sendMessage`` and the other ``send*`` methods except
        ``sendChatAction``) beyond ``total_per_second`` overall or ``per_chat_per_second`` to
        one chat within a sliding 1-second window answers 429 with ``retry_after=1`` and
        increments :attr:`rate_limited_count`. Only accepted sends count toward the window.
        """
        with self._cond:
            self._rate_limits = (total_per_second, per_chat_per_second) if enabled else None
            self._rate_total.clear()
            self._rate_chat.clear()

    # ------------------------------------------------------------------ HTTP dispatch

    def _handle_http(
        self, http_method: str, path: str, query: str, content_type: str, body: bytes
    ) -> tuple[int, bytes, str]:
        """Entry point from the HTTP handler thread: returns (status, body, content type)."""
        try:
            if path.startswith("/file/bot"):
                return self._serve_file(path[len("/file/bot"):])
            if not path.startswith("/bot"):
                return self._json_error(FakeBotAPIError(404))
            token, _, method = path[len("/bot"):].partition("/")
            raw, files = self._parse_params(query, content_type, body)
            params = {k: _decode_value(k, v) for k, v in raw.items()}
            if content_type.startswith("application/json") and body:
                decoded = json.loads(body)
                if isinstance(decoded, dict):
                    params.update(decoded)
            call = Call(method=method, params=params, time=time.time(), raw=raw, files=files)
        except Exception as exc:  # malformed request
            self.server_errors.append(exc)
            return self._json_error(FakeBotAPIError(400, f"Bad Request: {exc}"))

        with self._cond:
            self._calls.append(call)
            try:
                if token != self.token:
                    raise FakeBotAPIError(401)
                result = self._dispatch(call)
            except FakeBotAPIError as err:
                call.error_code = err.error_code
                call.description = err.description
                self._cond.notify_all()
                return self._json_error(err)
            except Exception as exc:  # a bug in the fake or in a registered handler
                self.server_errors.append(exc)
                err = FakeBotAPIError(500, f"Internal Server Error: {exc!r}")
                call.error_code, call.description = 500, err.description
                self._cond.notify_all()
                return self._json_error(err)
            call.result = result
            self._cond.notify_all()
            try:
                payload = json.dumps({"ok": True, "result": result}).encode()
            except (TypeError, ValueError) as exc:
                self.server_errors.append(exc)
                return self._json_error(FakeBotAPIError(500, f"Internal Server Error: {exc!r}"))
        return 200, payload, "application/json"

    @staticmethod
    def _json_error(err: FakeBotAPIError) -> tuple[int, bytes, str]:
        return err.error_code, json.dumps(err.to_payload()).encode(), "application/json"

    @staticmethod
    def _parse_params(
        query: str, content_type: str, body: bytes
    ) -> tuple[dict[str, str], dict[str, UploadedFile]]:
        raw: dict[str, str] = dict(parse_qsl(query, keep_blank_values=True)) if query else {}
        files: dict[str, UploadedFile] = {}
        ctype = content_type.lower()
        if ctype.startswith("multipart/form-data"):
            fields, files = _parse_multipart(body, content_type)
            raw.update(fields)
        elif body and not ctype.startswith("application/json"):
            raw.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        return raw, files

    def _dispatch(self, call: Call) -> Any:
        """Runs under the lock. Returns the ``result`` or raises :class:`FakeBotAPIError`."""
        lower = call.method.lower()
        chat = _norm_chat(call.params.get("chat_id"))
        for fault in self._faults:
            if fault.method == lower and (fault.chat_id is None or fault.chat_id == chat):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                self._local.fault = fault
                if not fault.handled:
                    raise FakeBotAPIError(0, "dropped before it was handled")
                break
        for rule in self._failures:
            if rule.method == lower and (rule.chat_id is None or rule.chat_id == chat):
                rule.remaining -= 1
                if rule.remaining <= 0:
                    self._failures.remove(rule)
                raise FakeBotAPIError(rule.error_code, rule.description, rule.retry_after)

        custom = self._custom.get(lower)
        builtin = self._handlers.get(lower)
        if custom is None and builtin is None:
            raise FakeBotAPIError(404)

        is_delivery = lower.startswith("send") or lower in _EXTRA_DELIVERY_METHODS
        if is_delivery and chat is not None and chat in self._blocked:
            raise FakeBotAPIError(403, _BLOCKED_DESCRIPTION)
        if (
            self._rate_limits is not None
            and lower.startswith("send")
            and lower != "sendchataction"
        ):
            self._check_rate_limit(chat)

        if custom is not None:
            return custom[1](copy.deepcopy(call.params))
        assert builtin is not None
        return builtin[1](call.params, call)

    def _check_rate_limit(self, chat: int | str | None) -> None:
        assert self._rate_limits is not None
        total, per_chat = self._rate_limits
        now = time.monotonic()
        window = self._rate_total
        while window and window[0] <= now - 1.0:
            window.popleft()
        chat_window = self._rate_chat.setdefault(chat, deque())  # type: ignore[arg-type]
        while chat_window and chat_window[0] <= now - 1.0:
            chat_window.popleft()
        if len(window) >= total or len(chat_window) >= per_chat:
            self.rate_limited_count += 1
            raise FakeBotAPIError(429, retry_after=1)
        window.append(now)
        chat_window.append(now)

    def _serve_file(self, rest: str) -> tuple[int, bytes, str]:
        token, _, file_path = rest.partition("/")
        if token != self.token:
            return self._json_error(FakeBotAPIError(401))
        with self._cond:
            data = self._file_paths.get(file_path)
        if data is None:
            return self._json_error(FakeBotAPIError(404))
        return 200, data, "application/octet-stream"

    # ------------------------------------------------------------------ internals (locked)

    def _enqueue(self, update: JSONDict) -> JSONDict:
        update = {"update_id": self._next_update_id, **update}
        self._next_update_id += 1
        self._updates.append(update)
        self._cond.notify_all()
        return update

    def _make_user(
        self, user_id: int, first_name: str, username: str | None, language_code: str | None
    ) -> JSONDict:
        user: JSONDict = {"id": user_id, "is_bot": False, "first_name": first_name}
        if username:
            user["username"] = username
        if language_code:
            user["language_code"] = language_code
        with self._cond:
            self._users[user_id] = user
        return user

    def _make_chat(self, chat_id: int | str, chat_type: str, user: JSONDict | None) -> JSONDict:
        chat: JSONDict = {"id": chat_id, "type": chat_type}
        if chat_type == "private":
            if user is not None:
                chat["first_name"] = user["first_name"]
                if "username" in user:
                    chat["username"] = user["username"]
        else:
            chat["title"] = self._chats.get(chat_id, {}).get("title", "Test Chat")
        self._chats[chat_id] = chat
        return chat

    def _chat_for(self, chat_id: int | str) -> JSONDict:
        chat = self._chats.get(chat_id)
        if chat is not None:
            return chat
        if isinstance(chat_id, str):
            chat = {"id": -1001000000000 - len(self._chats), "type": "channel", "title": chat_id,
                    "username": chat_id.lstrip("@")}
        elif chat_id > 0:
            user = self._users.get(chat_id)
            chat = {"id": chat_id, "type": "private",
                    "first_name": user["first_name"] if user else "Test"}
        else:
            chat = {"id": chat_id, "type": "supergroup" if str(chat_id).startswith("-100")
                    else "group", "title": "Test Chat"}
        self._chats[chat_id] = chat
        return chat

    def _new_message_id(self, chat_id: int | str) -> int:
        value = self._msg_counters.get(chat_id, 0) + 1
        self._msg_counters[chat_id] = value
        return value

    def _bump_message_id(self, chat_id: int | str, message_id: int) -> None:
        if self._msg_counters.get(chat_id, 0) < message_id:
            self._msg_counters[chat_id] = message_id

    def _store_file(
        self, content: bytes, *, file_id: str | None = None, file_path: str | None = None,
        filename: str | None = None,
    ) -> JSONDict:
        n = next(self._file_counter)
        file_id = file_id or f"FAKEFILE{self.bot_id}_{n:06d}"
        file_path = file_path or f"documents/file_{n}{_suffix(filename)}"
        info = {
            "file_id": file_id,
            "file_unique_id": f"U{n:08d}",
            "file_size": len(content),
            "file_path": file_path,
        }
        self._files[file_id] = info
        self._file_paths[file_path] = content
        return dict(info)

    @staticmethod
    def _as_predicate(predicate: Predicate | str) -> Predicate:
        if isinstance(predicate, str):
            name = predicate.lower()
            return lambda call: call.method.lower() == name
        return predicate

    def _timeout_message(self, predicate: Predicate | str, timeout: float) -> str:
        with self._cond:
            recorded = [
                c.method if c.error_code is None else f"{c.method}!{c.error_code}"
                for c in self._calls
            ]
        return (
            f"FakeBotAPI: no call matching {predicate!r} within {timeout}s; "
            f"recorded methods: {recorded}"
        )

    def _require_chat(self, params: JSONDict) -> int | str:
        chat_id = _norm_chat(params.get("chat_id"))
        if chat_id is None or chat_id == "":
            raise FakeBotAPIError(400, "Bad Request: chat_id is empty")
        return chat_id

    def _find_message(self, params: JSONDict, action: str) -> JSONDict:
        chat_id = self._require_chat(params)
        message_id = params.get("message_id")
        message = self._messages.get((chat_id, message_id)) if message_id is not None else None
        if message is None:
            raise FakeBotAPIError(400, f"Bad Request: message to {action} not found")
        return message

    # ------------------------------------------------------------------ methods (locked)

    def _m_true(self, params: JSONDict, call: Call) -> bool:
        return True

    def _m_get_me(self, params: JSONDict, call: Call) -> JSONDict:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def _m_get_updates(self, params: JSONDict, call: Call) -> list[JSONDict]:
        if self._webhook.get("url"):
            raise FakeBotAPIError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        limit = min(max(limit, 1), 100)
        timeout = float(params.get("timeout") or 0)
        allowed = params.get("allowed_updates") or None
        if offset < 0:
            keep = -offset
            self._updates = self._updates[-keep:] if keep else []
        elif offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]

        def selected() -> list[JSONDict]:
            ups = self._updates
            if allowed:
                ups = [u for u in ups if any(k in allowed for k in u if k != "update_id")]
            return ups[:limit]

        deadline = time.monotonic() + max(timeout, 0.0)
        result = selected()
        while not result and not self._stopped:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._cond.wait(remaining)
            result = selected()
        if result:
            self._max_fetched_update_id = max(
                self._max_fetched_update_id, result[-1]["update_id"]
            )
        return copy.deepcopy(result)

    def _m_delete_webhook(self, params: JSONDict, call: Call) -> bool:
        self._webhook = {}
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    def _m_set_webhook(self, params: JSONDict, call: Call) -> bool:
        url = params.get("url") or ""
        if params.get("drop_pending_updates"):
            self._updates.clear()
        if not url:
            self._webhook = {}
            return True
        self._webhook = {
            k: v for k, v in params.items() if k not in ("drop_pending_updates", "certificate")
        }
        self._webhook["has_custom_certificate"] = "certificate" in call.files
        return True

    def _m_get_webhook_info(self, params: JSONDict, call: Call) -> JSONDict:
        info: JSONDict = {
            "url": self._webhook.get("url", ""),
            "has_custom_certificate": bool(self._webhook.get("has_custom_certificate")),
            "pending_update_count": len(self._updates),
        }
        for key in ("max_connections", "allowed_updates", "ip_address"):
            if key in self._webhook:
                info[key] = self._webhook[key]
        return info

    def _validate_markup(self, markup: Any) -> None:
        if not isinstance(markup, dict):
            return
        for row in markup.get("inline_keyboard", []) or []:
            for button in row:
                data = button.get("callback_data")
                if data is not None and len(str(data).encode()) > _MAX_CALLBACK_DATA_BYTES:
                    raise FakeBotAPIError(400, "Bad Request: BUTTON_DATA_INVALID")
                if not set(button) - {"text"}:
                    raise FakeBotAPIError(
                        400,
                        "Bad Request: can't parse inline keyboard button: Text buttons are "
                        "unallowed in the inline keyboard",
                    )

    def _validate_text(self, text: Any, parse_mode: Any, empty_error: str) -> str:
        if text is None or str(text).strip() == "":
            raise FakeBotAPIError(400, empty_error)
        text = str(text)
        visible = text
        if isinstance(parse_mode, str) and parse_mode.lower() == "html":
            visible = html.unescape(re.sub(r"<[^>]*>", "", text))
        if len(visible) > _MAX_TEXT_LENGTH:
            raise FakeBotAPIError(400, "Bad Request: message is too long")
        return text

    def _new_bot_message(self, params: JSONDict, chat_id: int | str) -> JSONDict:
        chat = self._chat_for(chat_id)
        key_chat = chat_id
        message: JSONDict = {
            "message_id": self._new_message_id(key_chat),
            "from": self.bot_user,
            "chat": chat,
            "date": int(time.time()),
        }
        if params.get("message_thread_id"):
            message["message_thread_id"] = params["message_thread_id"]
        reply_to = None
        reply_parameters = params.get("reply_parameters")
        if isinstance(reply_parameters, dict):
            reply_to = reply_parameters.get("message_id")
        elif params.get("reply_to_message_id"):
            reply_to = params.get("reply_to_message_id")
        if reply_to is not None:
            original = self._messages.get((key_chat, reply_to))
            if original is not None:
                message["reply_to_message"] = {
                    k: v for k, v in original.items() if k != "reply_to_message"
                }
        markup = params.get("reply_markup")
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        return message

    def _m_send_message(self, params: JSONDict, call: Call) -> JSONDict:
        chat_id = self._require_chat(params)
        text = self._validate_text(
            params.get("text"), params.get("parse_mode"), "Bad Request: message text is empty"
        )
        self._validate_markup(params.get("reply_markup"))
        message = self._new_bot_message(params, chat_id)
        message["text"] = text
        if isinstance(params.get("entities"), list):
            message["entities"] = params["entities"]
        if isinstance(params.get("link_preview_options"), dict):
            message["link_preview_options"] = params["link_preview_options"]
        self._messages[(chat_id, message["message_id"])] = message
        return copy.deepcopy(message)

    def _m_send_media(self, params: JSONDict, call: Call) -> JSONDict:
        chat_id = self._require_chat(params)
        kind = call.method[4:].lower()  # sendPhoto -> photo
        if kind == "videonote":  # pragma: no cover - not registered
            kind = "video_note"
        self._validate_markup(params.get("reply_markup"))
        caption = params.get("caption")
        if caption is not None and len(str(caption)) > 1024:
            raise FakeBotAPIError(400, "Bad Request: message caption is too long")
        source = params.get(kind)
        upload: UploadedFile | None = call.files.get(kind)
        if isinstance(source, str) and source.startswith("attach://"):
            upload = call.files.get(source[len("attach://"):])
        if upload is not None:
            info = self._store_file(upload.data, filename=upload.filename)
            file_id, size = info["file_id"], len(upload.data)
            file_name, mime = upload.filename, upload.content_type
        elif isinstance(source, str) and source:
            known = self._files.get(source)
            file_id = source
            size = known["file_size"] if known else 0
            file_name, mime = None, None
        else:
            raise FakeBotAPIError(400, f"Bad Request: there is no {kind} in the request")
        unique = f"U{zlib.crc32(file_id.encode()):010d}"
        base: JSONDict = {"file_id": file_id, "file_unique_id": unique, "file_size": size}
        media: Any
        if kind == "photo":
            media = [{**base, "width": 320, "height": 240}]
        elif kind == "sticker":
            media = {**base, "type": "regular", "width": 512, "height": 512,
                     "is_animated": False, "is_video": False}
        elif kind in ("video", "animation"):
            media = {**base, "width": 320, "height": 240, "duration": 1}
        elif kind in ("audio", "voice"):
            media = {**base, "duration": 1}
        else:  # document
            media = dict(base)
        if kind in ("document", "audio", "video", "animation"):
            if file_name:
                media["file_name"] = file_name
            if mime:
                media["mime_type"] = mime
        message = self._new_bot_message(params, chat_id)
        message[kind] = media
        if caption:
            message["caption"] = str(caption)
        self._messages[(chat_id, message["message_id"])] = message
        return copy.deepcopy(message)

    def _m_edit_message_text(self, params: JSONDict, call: Call) -> JSONDict | bool:
        text = self._validate_text(
            params.get("text"), params.get("parse_mode"), "Bad Request: text must be non-empty"
        )
        self._validate_markup(params.get("reply_markup"))
        if params.get("inline_message_id"):
            return True
        message = self._find_message(params, "edit")
        if message.get("from", {}).get("id") != self.bot_id:
            raise FakeBotAPIError(400, "Bad Request: message can't be edited")
        if "text" not in message:
            raise FakeBotAPIError(400, "Bad Request: there is no text in the message to edit")
        markup = params.get("reply_markup")
        if message["text"] == text and message.get("reply_markup") == markup:
            raise FakeBotAPIError(400, _NOT_MODIFIED)
        message["text"] = text
        if isinstance(params.get("entities"), list):
            message["entities"] = params["entities"]
        else:
            message.pop("entities", None)
        if markup:
            message["reply_markup"] = markup
        else:
            message.pop("reply_markup", None)
        message["edit_date"] = int(time.time())
        return copy.deepcopy(message)

    def _m_edit_message_reply_markup(self, params: JSONDict, call: Call) -> JSONDict | bool:
        markup = params.get("reply_markup")
        self._validate_markup(markup)
        if params.get("inline_message_id"):
            return True
        message = self._find_message(params, "edit")
        if message.get("from", {}).get("id") != self.bot_id:
            raise FakeBotAPIError(400, "Bad Request: message can't be edited")
        if message.get("reply_markup") == (markup or None):
            raise FakeBotAPIError(400, _NOT_MODIFIED)
        if markup:
            message["reply_markup"] = markup
        else:
            message.pop("reply_markup", None)
        message["edit_date"] = int(time.time())
        return copy.deepcopy(message)

    def _m_answer_callback_query(self, params: JSONDict, call: Call) -> bool:
        if str(params.get("callback_query_id")) not in self._callback_ids:
            raise FakeBotAPIError(
                400,
                "Bad Request: query is too old and response timeout expired or query ID is "
                "invalid",
            )
        text = params.get("text")
        if text is not None and len(str(text)) > 200:
            raise FakeBotAPIError(400, "Bad Request: MESSAGE_TOO_LONG")
        return True

    @staticmethod
    def _command_key(scope: Any, language_code: Any) -> tuple[str, str]:
        if scope is not None and hasattr(scope, "to_dict"):
            scope = scope.to_dict()
        scope = scope or {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(language_code or "")

    def _m_set_my_commands(self, params: JSONDict, call: Call) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise FakeBotAPIError(400, "Bad Request: parameter \"commands\" is required")
        for command in commands:
            name = str(command.get("command", ""))
            if not re.fullmatch(r"[a-z0-9_]{1,32}", name):
                raise FakeBotAPIError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise FakeBotAPIError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
        key = self._command_key(params.get("scope"), params.get("language_code"))
        if commands:
            self._commands[key] = copy.deepcopy(commands)
        else:
            self._commands.pop(key, None)
        return True

    def _m_get_my_commands(self, params: JSONDict, call: Call) -> list[JSONDict]:
        key = self._command_key(params.get("scope"), params.get("language_code"))
        return copy.deepcopy(self._commands.get(key, []))

    def _m_delete_my_commands(self, params: JSONDict, call: Call) -> bool:
        self._commands.pop(self._command_key(params.get("scope"), params.get("language_code")),
                           None)
        return True

    def _m_delete_message(self, params: JSONDict, call: Call) -> bool:
        message = self._find_message(params, "delete")
        self._messages.pop((self._require_chat(params), message["message_id"]), None)
        return True

    def _m_delete_messages(self, params: JSONDict, call: Call) -> bool:
        chat_id = self._require_chat(params)
        ids = params.get("message_ids")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise FakeBotAPIError(400, "Bad Request: message identifiers are not specified")
        for message_id in ids:
            self._messages.pop((chat_id, message_id), None)
        return True

    def _m_get_file(self, params: JSONDict, call: Call) -> JSONDict:
        info = self._files.get(str(params.get("file_id")))
        if info is None:
            raise FakeBotAPIError(400, "Bad Request: invalid file_id")
        return dict(info)


def _is_positive(chat_id: int | str) -> bool:
    return isinstance(chat_id, int) and chat_id > 0


def _suffix(filename: str | None) -> str:
    if filename and "." in filename:
        return "." + filename.rsplit(".", 1)[1]
    return ""
