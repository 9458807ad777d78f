"""The Telegram adapter: python-telegram-bot callbacks that translate updates to the engine and
the engine's replies back to Telegram. No decisions are made here.

How one person or one error is kept from stalling everyone (issue 14):

- Updates of different people are handled at once, each person's in the order they came
  (`PerChatUpdates`); a person who floods gets one polite notice and their surplus is skipped,
  nobody else waits.
- The engine and the database run in worker threads (`asyncio.to_thread`), never on the event
  loop: a database locked by another process delays only the messages that need it.
- Sends are paced per chat (one a second, Telegram's limit) and overall (`PerChatRateLimiter`);
  a 429 delays that chat only, and the reply is sent after the wait.
- A request that may have reached Telegram (read timeout, connection dropped after writing) is
  not sent again; what Telegram refused (5xx) or never got is retried with backoff.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time

from telegram import (BotCommand, BotCommandScopeDefault, InlineKeyboardButton,
                      InlineKeyboardMarkup, LinkPreviewOptions, Message, Update)
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.ext import (Application, BaseUpdateProcessor, CallbackQueryHandler, ChatMemberHandler,
                          ContextTypes, Defaults, MessageHandler, filters)
from telegram.request import HTTPXRequest

from ..config import Settings
from ..delivery import SharedRateLimiter, _maybe_delivered, _retry_after, attach_broadcasts
from ..engine import COMMANDS, Engine, Incoming, Reply, Response
from ..i18n import N_, translate
from ..languages import DEFAULT_LANGUAGE, LANGUAGES, from_telegram_code
from ..telegram_html import split_message

log = logging.getLogger(__name__)


def _markup(reply: Reply) -> InlineKeyboardMarkup | None:
    if not reply.buttons:
        return None
    return InlineKeyboardMarkup([[InlineKeyboardButton(b.label, callback_data=b.data) for b in row]
                                 for row in reply.buttons])


# -- sending --------------------------------------------------------------------------------------

SEND_ATTEMPTS = 5           # for what Telegram refused for now (5xx) or never received
BACKOFF_SECONDS = 0.5       # the first wait; doubled after each failed attempt
MAX_FLOOD_WAITS = 5         # 429 answers waited out for one message before giving up
# Methods that change nothing when repeated: safe to send again when the answer was lost.
IDEMPOTENT = ("answerCallbackQuery", "deleteMessage", "deleteMessages", "editMessageText",
              "editMessageReplyMarkup", "leaveChat", "setMyCommands")
_dropped = {"count": 0}     # replies given up on since the start (logged with each)


def dropped_replies() -> int:
    """How many messages were given up on since the bot started (for tests and the log)."""
    return _dropped["count"]


async def _send_with_retry(make_call, what: str, *, idempotent: bool = False):
    """Send, retrying what can succeed later; give up on what cannot, and log it without the
    message or who it was for.

    - 5xx answers and requests that never left (connection refused, connect/pool timeout) are
      retried with exponential backoff, SEND_ATTEMPTS in all;
    - a request that may have reached Telegram (read timeout, connection dropped after writing)
      is not sent again unless `idempotent`: a possible miss is better than a duplicate;
    - 429s are waited out per chat by PerChatRateLimiter; 403 (blocked) and 400 are final.
    """
    for attempt in range(1, SEND_ATTEMPTS + 1):
        try:
            return await make_call()
        except Forbidden:
            log.info("dropped %s: the person blocked the bot", what)
            return None
        except BadRequest as exc:
            _give_up(what, attempt, exc)
            return None
        except RetryAfter as exc:   # still refused after PerChatRateLimiter's waits
            _give_up(what, attempt, exc)
            return None
        except (TimedOut, NetworkError) as exc:
            if not idempotent and _maybe_delivered(exc):
                _dropped["count"] += 1
                log.warning("%s may not have arrived (no answer from Telegram: %s); not sent again, "
                            "so that it cannot arrive twice", what, type(exc).__name__)
                return None
            if attempt == SEND_ATTEMPTS:
                _give_up(what, attempt, exc)
                return None
            log.info("%s failed (%s); trying again", what, type(exc).__name__)
            await asyncio.sleep(BACKOFF_SECONDS * 2 ** (attempt - 1))
        except TelegramError as exc:
            _give_up(what, attempt, exc)
            return None
    return None


def _give_up(what: str, attempts: int, exc: Exception) -> None:
    _dropped["count"] += 1
    log.warning("gave up on %s after %d attempt(s): %s (%d given up since the start)", what, attempts,
                type(exc).__name__, _dropped["count"])


async def send_response(context: ContextTypes.DEFAULT_TYPE, chat_id: int, response: Response,
                        pressed: Message | None = None) -> None:
    """Send the engine's replies; a navigation reply edits the message whose button was pressed."""
    engine = context.application.bot_data.get("engine")
    if response.delete_messages:
        await _delete_messages(context, chat_id, response.delete_messages)
    for reply in response.replies:
        markup = _markup(reply)
        parts = split_message(reply.text)
        if reply.replace and pressed is not None and len(parts) == 1:
            try:
                await pressed.edit_text(parts[0], reply_markup=markup)
                continue
            except BadRequest as exc:  # too old to edit, or unchanged: send it as a new message
                log.info("could not edit a message (%s); sending a new one", type(exc).__name__)
            except TelegramError as exc:
                log.info("could not edit a message (%s); sending a new one", type(exc).__name__)
        for i, part in enumerate(parts):
            sent = await _send_with_retry(
                lambda part=part, i=i: context.bot.send_message(
                    chat_id, part, reply_markup=markup if i == len(parts) - 1 else None),
                "a reply")
            if sent is not None and engine is not None and not response.forgotten:
                await asyncio.to_thread(engine.db.remember_message, chat_id, sent.message_id)


async def _delete_messages(context: ContextTypes.DEFAULT_TYPE, chat_id: int, ids: list[int]) -> None:
    """Delete the bot's and the person's recent messages (Telegram takes 100 at a time)."""
    for start in range(0, len(ids), 100):
        await _send_with_retry(lambda chunk=ids[start:start + 100]:
                               context.bot.delete_messages(chat_id, chunk), "a message deletion",
                               idempotent=True)


class PerChatRateLimiter(SharedRateLimiter):
    """Telegram's limits, kept per chat: at most one message a second to a private chat (one
    every three seconds to a group), and the bot-wide rate (`overall`, default 30 a second,
    shared with broadcasts through `budget`). A 429 makes that chat wait the seconds Telegram
    asks, then the message is sent; other chats are not held up."""

    PRIVATE_SECONDS = 1.0
    GROUP_SECONDS = 3.0

    def __init__(self, rate: float = 30.0, max_flood_waits: int = MAX_FLOOD_WAITS):
        super().__init__(rate, max_retries=0)
        from aiolimiter import AsyncLimiter

        self.max_flood_waits = max_flood_waits
        self._overall = AsyncLimiter(max(1.0, rate), 1.0)
        self._locks: dict[object, asyncio.Lock] = {}
        self._next: dict[object, float] = {}

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def process_request(self, callback, args, kwargs, endpoint, data, rate_limit_args):
        chat = data.get("chat_id")
        if chat is None or not endpoint.startswith(("send", "copy", "forward")) or endpoint == "sendChatAction":
            return await callback(*args, **kwargs)      # getUpdates, answerCallbackQuery, edits ...
        interval = self.GROUP_SECONDS if str(chat).startswith("-") else self.PRIVATE_SECONDS
        lock = self._locks.setdefault(chat, asyncio.Lock())
        try:
            async with lock:
                floods = 0
                while True:
                    wait = self._next.get(chat, 0.0) - time.monotonic()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    async with self._overall:
                        pass
                    self.budget.spend()
                    try:
                        return await callback(*args, **kwargs)
                    except RetryAfter as exc:
                        seconds = _retry_after(exc)
                        floods += 1
                        self._next[chat] = time.monotonic() + seconds
                        if floods > self.max_flood_waits:
                            raise
                        log.info("Telegram asked to wait %.0f s before writing to one chat again; "
                                 "that chat waits, the others do not", seconds)
                    finally:
                        self._next[chat] = max(self._next.get(chat, 0.0), time.monotonic() + interval)
        finally:
            if len(self._next) > 10_000:   # forget chats whose pause is over and nobody waits for
                now = time.monotonic()
                for key in [k for k, t in self._next.items() if t < now]:
                    if not self._locks.get(key, lock).locked():
                        self._next.pop(key, None)
                        self._locks.pop(key, None)


# -- updates: people at once, each person in order -------------------------------------------------

def _chat_key(update: object):
    if not isinstance(update, Update):
        return None
    chat = update.effective_chat
    if chat is not None:
        return chat.id
    user = update.effective_user
    return user.id if user is not None else None


class PerChatUpdates(BaseUpdateProcessor):
    """Handle the updates of different chats concurrently and each chat's one after another, in
    the order Telegram sent them. A chat with more than FLOOD_QUEUE updates waiting is flooding:
    its further updates are skipped (their ids are kept for /forget) and it is told so once,
    until it is caught up; nobody else waits for it."""

    FLOOD_QUEUE = 5

    def __init__(self, max_concurrent_updates: int = 64, on_flood=None):
        super().__init__(max_concurrent_updates)
        self.on_flood = on_flood
        self._pending: dict[object, int] = {}
        self._locks: dict[object, asyncio.Lock] = {}
        self._warned: set[object] = set()
        self.skipped = 0

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def do_process_update(self, update, coroutine) -> None:
        await coroutine

    async def process_update(self, update, coroutine) -> None:
        key = _chat_key(update)
        if key is None:
            await super().process_update(update, coroutine)
            return
        if self._pending.get(key, 0) >= self.FLOOD_QUEUE:
            coroutine.close()   # never run: a flood's surplus is skipped
            self.skipped += 1
            first = key not in self._warned
            self._warned.add(key)
            if first:
                log.info("one person is sending many messages at once; answering their first ones")
            if self.on_flood is not None:
                try:
                    await self.on_flood(update, first)
                except Exception as exc:   # a notice that failed must not stop the others
                    log.warning("could not handle a flood: %s", type(exc).__name__)
            return
        self._pending[key] = self._pending.get(key, 0) + 1
        lock = self._locks.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                await super().process_update(update, coroutine)
        finally:
            self._pending[key] -= 1
            if self._pending[key] <= 0:
                del self._pending[key]
                self._locks.pop(key, None)
                self._warned.discard(key)


FLOOD_NOTICE = N_("You sent many messages at once. I will answer the first ones; please wait for my "
                  "answers before you send more.")   # the one notice a flooding person gets


def _flood_handler(application: Application):
    async def on_flood(update: Update, first: bool) -> None:
        message = update.effective_message
        chat = update.effective_chat
        engine = application.bot_data.get("engine")
        if engine is not None and message is not None and chat is not None and chat.type == "private":
            await asyncio.to_thread(engine.db.remember_message, chat.id, message.message_id)
        if first and chat is not None and chat.type == "private":
            user = update.effective_user
            lang = from_telegram_code(user.language_code if user else None) or DEFAULT_LANGUAGE
            notice = translate(lang, FLOOD_NOTICE)
            await _send_with_retry(lambda: application.bot.send_message(chat.id, notice),
                                   "a flood notice")
    return on_flood


class SkippingUpdatesRequest(HTTPXRequest):
    """The getUpdates connection: an update python-telegram-bot cannot read is replaced by an
    empty one (its id only), so that it is confirmed and skipped, with one log line that holds
    nothing of its content, instead of stopping the polling for good."""

    async def post(self, url, request_data=None, *args, **kwargs):
        result = await super().post(url, request_data, *args, **kwargs)
        if isinstance(result, list):
            result = [readable_update(raw) for raw in result]
        return result


def readable_update(raw):
    """`raw` if python-telegram-bot can parse it, else `{"update_id": ...}` (logged, without its
    content); None when not even its id can be read."""
    import copy

    try:
        Update.de_json(copy.deepcopy(raw), None)
        return raw
    except Exception as exc:
        update_id = raw.get("update_id") if isinstance(raw, dict) else None
        kinds = sorted(k for k in raw if k != "update_id") if isinstance(raw, dict) else []
        log.warning("skipped an update that could not be read (%s in a %s update)", type(exc).__name__,
                    "/".join(str(k)[:30] for k in kinds[:3]) or "empty")
        return {"update_id": update_id} if isinstance(update_id, int) else None


# -- handlers ---------------------------------------------------------------------------------------

def _engine(context: ContextTypes.DEFAULT_TYPE) -> Engine:
    return context.application.bot_data["engine"]


async def _handle(engine: Engine, incoming: Incoming) -> Response:
    """The engine (and its database) in a worker thread: the event loop stays free for everyone
    else. A database another process keeps locked is tried again a few times."""
    import sqlite3

    for attempt in range(4):
        try:
            return await asyncio.to_thread(engine.handle, incoming)
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc) or attempt == 3:
                raise
            log.warning("the database is locked by another program; trying again")
            await asyncio.sleep(1.0 * 2 ** attempt)
    raise AssertionError("unreachable")


async def _remember(engine: Engine, chat_id: int, message_id: int) -> None:
    try:
        await asyncio.to_thread(engine.db.remember_message, chat_id, message_id)
    except Exception as exc:   # an id not kept must not cost the person their answer
        log.warning("could not keep a message id for /forget: %s", type(exc).__name__)


async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A text message or command in a private chat: ask the engine, send its replies."""
    message = update.effective_message
    user = update.effective_user
    engine = _engine(context)
    await _remember(engine, message.chat_id, message.message_id)
    response = await _handle(engine, Incoming(user.id, text=message.text, language_hint=user.language_code))
    await send_response(context, message.chat_id, response)


async def _acknowledge(query) -> None:
    """Stop the button's spinner, best-effort: a failed acknowledgement (500, or 400 'query is
    too old' after a restart) must not lose the press."""
    try:
        await query.answer()
    except TelegramError as exc:
        log.info("could not acknowledge a button press (%s); acting on it anyway", type(exc).__name__)


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """An inline button press in a private chat: acknowledge it, then let the engine handle its
    data. A press from anywhere else (a group, an inline message: forged, the bot never posts
    buttons there) is acknowledged and ignored: the bot never writes into a group."""
    query = update.callback_query
    await _acknowledge(query)
    message = query.message
    if message is None or message.chat.type != "private":
        log.info("ignored a button press from outside a private chat")
        return
    user = update.effective_user
    response = await _handle(_engine(context), Incoming(user.id, button=query.data or "",
                                                        language_hint=user.language_code))
    await send_response(context, message.chat.id, response,
                        pressed=message if isinstance(message, Message) else None)


async def on_non_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Stickers, photos, voice notes...: the engine treats them as a message with no words."""
    user = update.effective_user
    engine = _engine(context)
    await _remember(engine, update.effective_chat.id, update.effective_message.message_id)
    response = await _handle(engine, Incoming(user.id, text="", language_hint=user.language_code))
    await send_response(context, update.effective_chat.id, response)


async def on_group(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """In a group the bot says why it only talks in private, then leaves: what people ask it
    must not be seen by others, and it keeps no group data."""
    chat = update.effective_chat
    user = update.effective_user
    lang = from_telegram_code(user.language_code if user else None) or DEFAULT_LANGUAGE
    notice = _engine(context).group_notice(lang, context.bot.username)
    await _send_with_retry(lambda: context.bot.send_message(chat.id, notice.text), "a group notice")
    await _send_with_retry(lambda: context.bot.leave_chat(chat.id), "leaving a group", idempotent=True)
    log.info("left a group chat")


async def on_added_to_group(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Someone added the bot to a group: explain and leave at once."""
    change = update.my_chat_member
    if change.chat.type in ("group", "supergroup") and change.new_chat_member.status in ("member",
                                                                                          "administrator"):
        await on_group(update, context)


async def purge_expired(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Scheduled retention: message ids past 48 hours, old unanswered questions and delivery
    records, people inactive too long."""
    settings: Settings = context.application.bot_data["settings"]
    counts = _engine(context).db.purge_expired(dt.timedelta(days=settings.inactive_days),
                                               dt.timedelta(days=settings.unanswered_days),
                                               dt.timedelta(days=settings.delivery_days))
    log.info("retention: %(message_ids)d message ids, %(unanswered_questions)d unanswered questions, "
             "%(delivery_records)d delivery records and %(inactive_people)d inactive people deleted",
             counts)


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log what failed, without the message or who sent it; the bot keeps running."""
    error = context.error
    log.error("error while handling an update: %s: %s", type(error).__name__,
              error if isinstance(error, TelegramError) else "see traceback", exc_info=error)


async def start_watching(application: Application) -> None:
    """Reload the knowledge base when staff save a file (runs until the bot stops: stop_watching
    ends it and waits for it)."""
    from ..reloader import watch_knowledge

    engine: Engine = application.bot_data["engine"]
    if engine.knowledge_dir is not None:
        stop = asyncio.Event()
        application.bot_data["stop_watching"] = stop
        application.bot_data["watch_task"] = asyncio.create_task(
            watch_knowledge(engine, engine.knowledge_dir, stop), name="knowledge-watch")


async def stop_watching(application: Application) -> None:
    stop = application.bot_data.pop("stop_watching", None)
    if stop is not None:
        stop.set()
    task = application.bot_data.pop("watch_task", None)
    if task is not None:
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=2.0)
        except (asyncio.TimeoutError, asyncio.CancelledError):
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        except Exception as exc:
            log.warning("the knowledge watcher ended with %s", type(exc).__name__)


async def on_startup(application: Application) -> None:
    await register_commands(application)
    await start_watching(application)


async def register_commands(application: Application) -> None:
    """Register the command menu with Telegram in each language (English as the default)."""
    for lang in (None, *LANGUAGES):
        commands = [BotCommand(name, translate(lang or "en", desc)) for name, desc in COMMANDS]
        await application.bot.set_my_commands(commands, scope=BotCommandScopeDefault(),
                                              language_code=lang)


def build_application(settings: Settings, engine: Engine) -> Application:
    """Wire the handlers; the same Application serves long polling, webhooks and the tests."""
    builder = (Application.builder()
               .token(settings.require_token())
               .defaults(Defaults(parse_mode=ParseMode.HTML,
                                  link_preview_options=LinkPreviewOptions(is_disabled=True)))
               .rate_limiter(PerChatRateLimiter(settings.broadcast_rate))
               # Telegram usually answers within a second; a slow answer is waited for (a request
               # that timed out may have arrived and is not sent again, see _send_with_retry)
               .request(HTTPXRequest(connection_pool_size=128, connect_timeout=10.0, read_timeout=30.0,
                                     write_timeout=30.0, pool_timeout=30.0))
               .get_updates_request(SkippingUpdatesRequest(connect_timeout=10.0, read_timeout=30.0,
                                                           write_timeout=30.0, pool_timeout=30.0))
               .post_init(on_startup)
               .post_stop(stop_watching))
    if settings.api_base_url:
        base = settings.api_base_url
        builder = builder.base_url(base).base_file_url(base.rstrip("/").rsplit("/", 1)[0] + "/file/bot")
    application = builder.concurrent_updates(PerChatUpdates()).build()
    application.update_processor.on_flood = _flood_handler(application)
    application.bot_data["engine"] = engine
    application.bot_data["settings"] = settings
    private = filters.ChatType.PRIVATE
    # Groups: explain and leave. Edited messages and channel posts are ignored on purpose: an
    # edit would answer twice, and the bot has no business in channels.
    application.add_handler(MessageHandler(filters.ChatType.GROUPS & ~filters.StatusUpdate.LEFT_CHAT_MEMBER
                                           & ~filters.UpdateType.EDITED, on_group))
    application.add_handler(ChatMemberHandler(on_added_to_group, ChatMemberHandler.MY_CHAT_MEMBER))
    application.add_handler(MessageHandler(private & filters.TEXT & ~filters.UpdateType.EDITED, on_text))
    application.add_handler(CallbackQueryHandler(on_button))
    application.add_handler(MessageHandler(private & ~filters.TEXT & ~filters.UpdateType.EDITED
                                           & ~filters.StatusUpdate.ALL, on_non_text))
    application.add_error_handler(on_error)
    if application.job_queue is not None:
        application.job_queue.run_repeating(purge_expired, interval=dt.timedelta(hours=6),
                                             first=dt.timedelta(seconds=30), name="retention")
    attach_broadcasts(application, settings, engine.db)   # sends, schedules and resumes broadcasts
    return application


# -- running: `python main.py run` ------------------------------------------------------------------

WEBHOOK_PATH = "/telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_WEBHOOK_BODY = 1 << 20     # 1 MiB: Telegram's updates are a few kilobytes
STOP_SECONDS = 10.0            # stopping never takes longer than this


def telegram_address(settings: Settings) -> str:
    """Where the bot reaches Telegram, without the token."""
    return (settings.api_base_url or "https://api.telegram.org/bot").rstrip("/")


async def connect(application: Application, settings: Settings, stop: asyncio.Event) -> bool:
    """Initialize the application, waiting for Telegram as long as it cannot be reached (one log
    line per try, no traceback); False if `stop` was set meanwhile."""
    delay = 2.0
    while not stop.is_set():
        try:
            await application.initialize()
            return True
        except (NetworkError, TimedOut) as exc:
            log.warning("cannot reach Telegram at %s (%s); trying again in %.0f s",
                        telegram_address(settings), type(exc).__name__, delay)
        try:
            await asyncio.wait_for(stop.wait(), timeout=delay)
        except asyncio.TimeoutError:
            pass
        delay = min(delay * 2, 60.0)
    return False


def webhook_app(application: Application, secret: str, max_body: int = MAX_WEBHOOK_BODY):
    """The aiohttp app that receives Telegram's webhook posts at /telegram: the secret header is
    checked before any of the body is read, the body is capped at `max_body`, an update that
    cannot be read is answered 200 and skipped (Telegram would otherwise send it again and again)."""
    import hmac
    import json

    from aiohttp import web

    async def receive(request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not secret or not hmac.compare_digest(given.encode(), secret.encode()):
            return web.Response(status=403)
        if request.content_type != "application/json":
            return web.Response(status=415)
        if request.content_length is not None and request.content_length > max_body:
            return web.Response(status=413)
        body = bytearray()
        while True:
            chunk = await request.content.read(65536)
            if not chunk:
                break
            body += chunk
            if len(body) > max_body:
                return web.Response(status=413)
        try:
            raw = json.loads(body.decode(request.charset or "utf-8"))
        except (ValueError, LookupError):
            log.warning("skipped a webhook post that is not JSON")
            return web.Response(status=200)
        raw = readable_update(raw)
        if raw is None:
            return web.Response(status=200)
        await application.update_queue.put(Update.de_json(raw, application.bot))
        return web.Response(status=200)

    app = web.Application(client_max_size=max_body)
    app.router.add_post(WEBHOOK_PATH, receive)
    return app


class TelegramRunner:
    """Starts and stops the Telegram side: polling, or the webhook on `listen:port`."""

    def __init__(self, application: Application, settings: Settings, *, webhook_url: str | None = None,
                 listen: str = "127.0.0.1", port: int = 8443, secret: str | None = None):
        self.application = application
        self.settings = settings
        self.webhook_url = webhook_url
        self.listen, self.port, self.secret = listen, port, secret
        self._site_runner = None

    async def start(self, stop: asyncio.Event) -> bool:
        application = self.application
        if not await connect(application, self.settings, stop):
            return False
        await application.post_init(application)
        if self.webhook_url:
            from aiohttp import web

            self._site_runner = web.AppRunner(webhook_app(application, self.secret or ""), access_log=None)
            await self._site_runner.setup()
            await web.TCPSite(self._site_runner, self.listen, self.port).start()
            await _send_with_retry(lambda: application.bot.set_webhook(
                self.webhook_url.rstrip("/") + WEBHOOK_PATH, secret_token=self.secret),
                "setting the webhook", idempotent=True)
            log.info("Telegram webhook listening on %s:%d%s", self.listen, self.port, WEBHOOK_PATH)
        else:
            await application.updater.start_polling()
            log.info("Telegram: polling for updates")
        await application.start()
        return True

    async def stop(self) -> None:
        application = self.application
        try:
            await asyncio.wait_for(self._stop(), timeout=STOP_SECONDS)
        except asyncio.TimeoutError:
            log.warning("stopping took longer than %.0f s; leaving anyway", STOP_SECONDS)

    async def _stop(self) -> None:
        application = self.application
        if application.updater is not None and application.updater.running:
            await application.updater.stop()
        if self._site_runner is not None:
            await self._site_runner.cleanup()
        if application.running:
            await application.stop()
        if application.post_stop is not None:
            await application.post_stop(application)
        await application.shutdown()


def run_telegram(settings: Settings, engine: Engine, *, webhook_url: str | None = None,
                 listen: str = "127.0.0.1", port: int = 8443, secret: str | None = None) -> None:
    """`python main.py run` with Telegram alone: until SIGTERM or SIGINT, then out within
    seconds, always (threads still busy are not waited for)."""
    import os
    import signal
    import threading

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        application = build_application(settings, engine)
        runner = TelegramRunner(application, settings, webhook_url=webhook_url, listen=listen, port=port,
                                secret=secret)
        try:
            if await runner.start(stop):
                await stop.wait()
            log.info("stopping")
        finally:
            await runner.stop()

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(main())
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.wait(pending, timeout=2.0))
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        try:
            engine.db.close()
        except Exception as exc:
            log.warning("closing the database: %s", type(exc).__name__)
        busy = [t for t in threading.enumerate() if t is not threading.main_thread() and t.is_alive()
                and not t.daemon]
        if busy:   # a worker thread stuck (e.g. on a locked database): do not wait for it forever
            deadline = time.monotonic() + 3.0
            for thread in busy:
                thread.join(max(0.0, deadline - time.monotonic()))
            if any(t.is_alive() for t in busy):
                log.warning("stopped; %d worker thread(s) were still busy and are not waited for",
                            sum(t.is_alive() for t in busy))
                logging.shutdown()
                os._exit(0)
        loop.close()
