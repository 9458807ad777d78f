"""Delivering a broadcast: each recipient once, at Telegram's rate, surviving crashes and restarts.

How a broadcast is sent
-----------------------
When sending starts, the audience is fixed: one 'pending' row per active subscriber to the topic,
with their language (`Database.start_broadcast`). Then, for each recipient, in chat id order:

  1. wait for a turn in the send budget (the total rate, default 30 per second) and at least one
     second since the last message to the same chat;
  2. write 'sending' (committed) - unless they unsubscribed, blocked the bot or were forgotten
     since, then 'skipped' (or nothing: their row is gone);
  3. make the request to Telegram;
  4. write the outcome (committed): 'sent'; 'blocked' (403: blocked the bot or deactivated account:
     the subscription is marked inactive); 'failed' with the kind of error (400, or retries used
     up); 'pending' again for what Telegram refused for now (429: the whole sender waits the
     seconds Telegram asks; 5xx and connection errors: retried with backoff, up to 5 attempts).

One process at a time sends a broadcast: it holds a lease in the broadcast's row, renewed every
few seconds, checked before each 'sending' write. A process that dies loses it: at once when the
next one on the same machine sees the process is gone, otherwise when the lease expires (60 s).

Exactly once, as far as Telegram allows
---------------------------------------
A crash (kill -9, power loss) between steps 2 and 4 leaves the row 'sending': the request may or
may not have reached Telegram, and the Bot API has no idempotency key and no way to ask whether a
message was delivered. On resume such rows become 'unknown' and are NOT sent again: at-most-once
for that window, a deliberate choice:

  * The window is tiny: at most one recipient per request in flight (`concurrency`, usually 0-2 at
    30 per second), and most of a request's time is spent waiting for Telegram's answer, i.e.
    after the message was handed over. Re-sending blindly would duplicate more often than it would
    fill a gap.
  * A duplicate is seen by the person and wears out a channel meant for urgent alerts; a possible
    miss is recorded per person ('unknown', error 'interrupted'), counted in every report, and can
    be sent again on purpose with `python main.py broadcast resume ID --resend-unknown` (which is
    at-least-once for them: an informed choice for an urgent alert).

The same rule covers a request whose answer never came (read timeout, connection dropped after the
request was written): 'unknown', not retried. Everything else is retried or final.

Answers to people chatting are never queued behind a broadcast: broadcasts use their own
connections, the application's rate limiter (`SharedRateLimiter`) tells the send budget about
every answer so broadcasts slow down to leave room for them within the same total rate, and one
place in each second is always left free for an answer (`SendBudget.RESERVE`).
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import heapq
import logging
import os
import secrets
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

from telegram import Bot, LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.error import (BadRequest, ChatMigrated, Forbidden, InvalidToken, NetworkError, RetryAfter,
                            TelegramError, TimedOut)
from telegram.ext import AIORateLimiter
from telegram.request import HTTPXRequest

from ...i18n import _, use_language
from ...languages import LANGUAGES
from ...storage import BROADCAST_CHANNELS, Broadcast, Database
from ...telegram_html import escape
from .content import render

log = logging.getLogger(__name__)

FREE_RATE = 30            # Telegram's broadcast limit without paid broadcasts (messages per second)
LEASE_SECONDS = 60.0      # another process may take a broadcast over this long after its last renewal
FINAL_STATES = ("sent", "blocked", "failed", "skipped", "unknown")
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


# Senders for the channels other than Telegram, registered by their own modules when imported
# (whatsapp.py: LANES["whatsapp"], sms.py: LANES["sms"]): channel -> factory(settings, db, budget,
# owner) returning (sender, client) or None when the channel is not configured; the client has start() and close().
LANES: dict[str, Callable] = {}


def lane_rate(settings, channel: str) -> float:
    """A lane's messages per second: WHATSAPP_BROADCAST_RATE, TWILIO_RATE (settings.sms_rate)."""
    return (getattr(settings, f"{channel}_broadcast_rate", None) or getattr(settings, f"{channel}_rate", None)
            or FREE_RATE)


def new_owner() -> str:
    """A name for this process in a broadcast's lease: host, pid and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def holder_is_gone(owner: str) -> bool:
    """True if the process named `owner` ran on this machine and no longer exists."""
    host, _sep, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:       # exists, but belongs to someone else
        return False
    return False


# -- the rate ---------------------------------------------------------------------------------------

class SendBudget:
    """Telegram's overall limit for one bot, shared by everything that sends in this process.

    Telegram allows about `rate` messages per second in total. Every send is recorded: broadcast
    sends wait for their turn (`take`); answers to people chatting never wait (`spend`) and count
    like the others. Two rules make the turns:

    * at most `capacity` sends in any window of `window` seconds, 3% longer than Telegram's
      second, so network jitter can't bunch one message too many into its second; broadcasts
      leave one of those sends free (`RESERVE`), so an answer to someone never meets a 429;
    * broadcast turns are spread evenly over the window (no bursts), catching up on a late turn
      (timer overshoot) but never banking idle time.
    """

    MARGIN = 0.03
    RESERVE = 1

    def __init__(self, rate: float = FREE_RATE, clock: Callable[[], float] = time.monotonic):
        self.rate = rate
        self.capacity = max(1, int(rate))
        self.window = self.capacity / rate * (1 + self.MARGIN)
        self.share = max(1, self.capacity - self.RESERVE)      # sends per window for broadcasts
        self.interval = self.window / self.share
        self._clock = clock
        self._recent: collections.deque[float] = collections.deque()   # every send in the window
        self._next = 0.0
        self._paused_until = 0.0

    def spend(self) -> None:
        """Someone else (an answer to a person) sends now: it counts, it does not wait."""
        self._recent.append(self._clock())

    def pause(self, seconds: float) -> None:
        """No broadcast turn for `seconds` (Telegram answered 429, or the network is down)."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    def refund(self) -> None:
        """The last turn taken was not used."""
        self._next -= self.interval
        if self._recent:
            self._recent.pop()

    def _wait(self, now: float) -> float:
        while self._recent and self._recent[0] <= now - self.window:
            self._recent.popleft()
        wait = max(self._next - now, self._paused_until - now)
        if len(self._recent) >= self.share:   # a slot frees when enough sends leave the window
            wait = max(wait, self._recent[len(self._recent) - self.share] + self.window - now)
        return wait

    async def take(self, stop: asyncio.Event | None = None) -> bool:
        """Wait for a turn; False if `stop` was set meanwhile."""
        while True:
            if stop is not None and stop.is_set():
                return False
            now = self._clock()
            wait = self._wait(now)
            if wait <= 0:
                self._next = (self._next if now - self._next < self.interval else now) + self.interval
                self._recent.append(now)
                return True
            await _sleep(min(wait, 0.25), stop)


class SharedRateLimiter(AIORateLimiter):
    """The application's rate limiter (PTB's, with retries after 429) which also tells the
    broadcast budget about every message the bot sends to people chatting."""

    def __init__(self, rate: float = FREE_RATE, **kwargs):
        super().__init__(overall_max_rate=rate, **kwargs)
        self.budget = SendBudget(rate)

    async def process_request(self, callback, args, kwargs, endpoint, data, rate_limit_args):
        if endpoint.startswith("send") and endpoint != "sendChatAction":
            self.budget.spend()
        return await super().process_request(callback, args, kwargs, endpoint, data, rate_limit_args)


async def _sleep(seconds: float, stop: asyncio.Event | None = None) -> None:
    if seconds <= 0:
        return
    if stop is None:
        await asyncio.sleep(seconds)
        return
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except asyncio.TimeoutError:
        pass


# -- one broadcast ----------------------------------------------------------------------------------

@dataclass
class Progress:
    total: int
    done: int                     # recipients in a final state
    counts: dict[str, int]
    rate: float                   # messages per second over the last seconds
    elapsed: float

    @property
    def eta(self) -> float | None:
        return (self.total - self.done) / self.rate if self.rate > 0 else None


@dataclass
class Outcome:
    broadcast_id: int
    status: str                   # done | stopped (resumes by itself) | paused | cancelled | busy | lost | failed
    counts: dict[str, int] = field(default_factory=dict)
    interrupted: int = 0          # left 'sending' by a crash: now 'unknown', not sent again
    flood_waits: int = 0          # 429 answers
    retries: int = 0              # 5xx and connection errors retried
    elapsed: float = 0.0
    sent_this_run: int = 0
    error: str | None = None

    @property
    def sent_rate(self) -> float:
        return self.sent_this_run / self.elapsed if self.elapsed > 0 else 0.0


@dataclass(order=True)
class _Item:
    not_before: float
    chat_id: int
    language: str = field(compare=False)
    attempts: int = field(default=0, compare=False)     # failed attempts (5xx, connection)
    floods: int = field(default=0, compare=False)       # 429s


class Sender:
    """Sends one broadcast to its recipients (see the module's docstring)."""

    CHECK_EVERY = 2.0         # renew the lease, notice a cancellation
    MAX_ATTEMPTS = 5          # per recipient, for 5xx answers and connection errors
    BACKOFF_SECONDS = 1.0     # the first wait after one; doubled each time, at most 30 s
    MAX_FLOODS = 10           # per recipient, 429 answers
    PER_CHAT_SECONDS = 1.0    # Telegram: about one message per second to the same chat
    BATCH = 500

    channel = "telegram"

    def __init__(self, db: Database, bot: Bot | None, budget: SendBudget, *, owner: str | None = None,
                 concurrency: int | None = None, paid: bool = False,
                 clock: Callable[[], float] = time.monotonic, companions: tuple = ()):
        """`bot` None: no Telegram here (its recipients are skipped). `companions`: senders for the
        other channels (whatsapp.WhatsAppSender), run side by side with this one on the same
        broadcast, each at its own rate and with its own errors and retries."""
        self.db = db
        self.bot = bot
        self.companions = tuple(companions)
        self.budget = budget
        self.owner = owner or new_owner()
        self.concurrency = concurrency or max(4, min(100, int(budget.rate // 2)))
        self.paid = paid
        self._clock = clock
        self.broadcast: Broadcast | None = None
        self.counts: dict[str, int] = {}
        self.total = 0
        self._started = 0.0
        self._finished: collections.deque[float] = collections.deque()
        self._outcome: Outcome | None = None

    # -- the public part

    def progress(self) -> Progress | None:
        """Where the broadcast is now; None before sending started."""
        if self.broadcast is None:
            return None
        now = self._clock()
        while self._finished and self._finished[0] < now - 10:
            self._finished.popleft()
        window = min(10.0, now - self._started)
        rate = len(self._finished) / window if window > 0.5 else 0.0
        done = sum(self.counts.get(s, 0) for s in FINAL_STATES)
        return Progress(self.total, done, dict(self.counts), rate, now - self._started)

    def note_sent(self, chat_id: int) -> None:
        """Something else was sent to this chat now (the organizer's progress message): keep the
        broadcast's message to it at least a second apart."""
        if self.broadcast is not None and hasattr(self, "_last_sent"):
            self._last_sent[chat_id] = self._clock()

    async def run(self, broadcast_id: int, *, resend_unknown: bool = False,
                  stop: asyncio.Event | None = None, pause_on_stop: bool = False) -> Outcome:
        """Send (or go on sending) one broadcast until every recipient has a final state, `stop`
        is set (the broadcast stays 'sending', or becomes 'paused' with `pause_on_stop`), it is
        cancelled, or another process holds it ('busy')."""
        db = self.db
        record = db.broadcast(broadcast_id)
        if record is None:
            raise KeyError(f"no broadcast #{broadcast_id}")
        outcome = self._outcome = Outcome(broadcast_id, record.status)
        if record.status in ("done", "cancelled"):
            outcome.counts = db.recipient_counts(broadcast_id)
            return outcome
        holder = record.lease_owner
        gone = holder if holder and holder != self.owner and holder_is_gone(holder) else None
        if not db.claim_broadcast(broadcast_id, self.owner, LEASE_SECONDS, take_over=gone):
            outcome.status = "busy"
            return outcome
        if gone:
            log.info("broadcast #%d: its previous sender is gone; taking over", broadcast_id)
        release_as = None
        try:
            db.start_broadcast(broadcast_id, self.owner)
            outcome.interrupted = db.resume_broadcast(broadcast_id, resend_unknown)
            if outcome.interrupted:
                log.warning("broadcast #%d: %d recipient(s) were being sent when it was interrupted; "
                            "they are marked 'unknown' and not sent again", broadcast_id,
                            outcome.interrupted)
            resuming = record.status in ("sending", "paused")
            self.broadcast = record = db.broadcast(broadcast_id)
            if resuming:   # a sender that just died may have used up Telegram's current second
                self.budget.pause(1.0)
            if record.status != "sending":
                outcome.status = record.status
                return outcome
            lanes = ([self] if self.bot is not None else []) + list(self.companions)
            for channel in BROADCAST_CHANNELS:
                if channel not in {lane.channel for lane in lanes} and db.skip_channel(
                        broadcast_id, channel, "channel_off"):
                    log.warning("broadcast #%d: %s is not configured here: its recipients are skipped",
                                broadcast_id, channel)
            self.counts = db.recipient_counts(broadcast_id)
            self.total = record.audience or 0
            self._started = self._clock()
            for lane in lanes:   # one broadcast: shared records, counts and outcome
                lane.broadcast, lane.counts, lane.total, lane._outcome = record, self.counts, self.total, outcome
                lane._finished, lane._started, lane.owner = self._finished, self._started, self.owner
                lane._prepare(record)
            reasons = await asyncio.gather(*(lane._send_all(stop) for lane in lanes))
            outcome.status = next((r for r in ("cancelled", "lost", "failed", "stopped") if r in reasons),
                                  "done")
            if outcome.status == "failed":
                outcome.error = next(lane._fatal for lane in lanes if lane._fatal)
            release_as = {"done": "done", "stopped": "paused" if pause_on_stop else None}.get(outcome.status)
            if outcome.status == "stopped" and pause_on_stop:
                outcome.status = "paused"
        finally:
            outcome.elapsed = self._clock() - self._started if self._started else 0.0
            db.release_broadcast(broadcast_id, self.owner, release_as)
            outcome.counts = db.recipient_counts(broadcast_id)
        log.info("broadcast #%d: %s; %s", broadcast_id, outcome.status,
                 ", ".join(f"{k} {v}" for k, v in sorted(outcome.counts.items())))
        return outcome

    def _prepare(self, record: Broadcast) -> None:
        """The message per language, as this channel sends it."""
        self._texts = {lang: render(record.topic, record.texts, record.default_language, lang)
                       for lang in LANGUAGES}

    # -- the loop

    async def _send_all(self, stop: asyncio.Event | None) -> str:
        record = self.broadcast
        self._queue: collections.deque[_Item] = collections.deque()
        self._retry: list[_Item] = []
        self._cursor: int | None = None
        self._exhausted = False
        self._last_sent: dict[int, float] = {}
        self._inflight: set[asyncio.Task] = set()
        self._fatal: str | None = None
        self._net_failures = 0
        slots = asyncio.Semaphore(self.concurrency)
        next_check = self._clock() + self.CHECK_EVERY
        reason = "done"
        while True:
            if stop is not None and stop.is_set():
                reason = "stopped"
                break
            if self._fatal:
                reason = "failed"
                break
            if self._clock() >= next_check:
                status = self.db.renew_broadcast(record.id, self.owner, LEASE_SECONDS)
                if status != "sending":
                    reason = "cancelled" if status == "cancelled" else "lost"
                    break
                next_check = self._clock() + self.CHECK_EVERY
                self._forget_old_sends()
            item = self._next_item()
            if item is None:
                if self._exhausted and not self._retry and not self._inflight:
                    break
                wait = self._retry[0].not_before - self._clock() if self._retry else 0.05
                await _sleep(max(0.005, min(wait, 0.05)), stop)
                continue
            await slots.acquire()
            if not await self.budget.take(stop):
                slots.release()
                heapq.heappush(self._retry, item)
                reason = "stopped"
                break
            verdict = self.db.begin_send(record.id, item.chat_id, record.topic, self.owner)
            if verdict != "go":
                slots.release()
                self.budget.refund()
                if verdict == "skipped":
                    self._count("skipped")
                elif verdict == "lost":
                    status = self.db.broadcast(record.id).status
                    reason = "cancelled" if status == "cancelled" else "lost"
                    break
                continue
            self._last_sent[item.chat_id] = self._clock()
            task = asyncio.create_task(self._deliver(item, slots))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
        if self._inflight:      # let requests already made finish and write their outcome
            await asyncio.gather(*self._inflight, return_exceptions=True)
        return reason

    def _next_item(self) -> _Item | None:
        now = self._clock()
        while True:
            if self._retry and self._retry[0].not_before <= now:
                item = heapq.heappop(self._retry)
            else:
                if not self._queue and not self._exhausted:
                    rows = self.db.pending_recipients(self.broadcast.id, self._cursor, self.BATCH,
                                                     channel=self.channel)
                    if rows:
                        self._cursor = rows[-1][0]
                        self._queue.extend(_Item(0.0, chat, lang) for chat, lang in rows)
                    else:
                        self._exhausted = True
                if not self._queue:
                    return None
                item = self._queue.popleft()
            last = self._last_sent.get(item.chat_id)
            if last is not None and now - last < self.PER_CHAT_SECONDS:
                item.not_before = last + self.PER_CHAT_SECONDS
                heapq.heappush(self._retry, item)
                continue
            return item

    def _forget_old_sends(self) -> None:
        cutoff = self._clock() - self.PER_CHAT_SECONDS
        if len(self._last_sent) > 1000:
            self._last_sent = {c: t for c, t in self._last_sent.items() if t >= cutoff}

    def _count(self, state: str) -> None:
        self.counts[state] = self.counts.get(state, 0) + 1
        if state == "sent":
            self._outcome.sent_this_run += 1
        self._finished.append(self._clock())

    def _finish(self, item: _Item, state: str, error: str | None = None) -> None:
        self.db.end_send(self.broadcast.id, item.chat_id, state, error)
        self._count(state)

    def _again(self, item: _Item, delay: float) -> None:
        """Telegram refused it for now: pending again, retried after `delay` seconds."""
        self.db.end_send(self.broadcast.id, item.chat_id, "pending")
        item.not_before = self._clock() + delay
        heapq.heappush(self._retry, item)

    # -- one message

    async def _deliver(self, item: _Item, slots: asyncio.Semaphore) -> None:
        try:
            await self.bot.send_message(
                item.chat_id, self._texts[item.language], parse_mode=ParseMode.HTML,
                link_preview_options=NO_PREVIEW, allow_paid_broadcast=True if self.paid else None)
        except RetryAfter as exc:
            seconds = _retry_after(exc)
            self._outcome.flood_waits += 1
            self.budget.pause(seconds)
            item.floods += 1
            if item.floods >= self.MAX_FLOODS:
                self._finish(item, "failed", "flood")
            else:
                self._again(item, seconds)
        except Forbidden as exc:
            kind = "deactivated" if "deactivated" in str(exc).lower() else "blocked"
            self._finish(item, "blocked", kind)
            self.db.mark_unreachable(item.chat_id)
        except (BadRequest, ChatMigrated) as exc:
            if "chat not found" in str(exc).lower() or "user not found" in str(exc).lower():
                self._finish(item, "blocked", "chat_not_found")
                self.db.mark_unreachable(item.chat_id)
            else:
                log.warning("broadcast #%d: Telegram refused a message: %s", self.broadcast.id,
                            type(exc).__name__)
                self._finish(item, "failed", "bad_request")
        except (TimedOut, NetworkError) as exc:
            if _maybe_delivered(exc):
                self._finish(item, "unknown", "timeout")
                return
            self._retry_later(item, "server" if exc.__cause__ is None else "network")
        except InvalidToken as exc:
            self.db.end_send(self.broadcast.id, item.chat_id, "pending")
            self._fatal = f"Telegram refused the bot's token ({type(exc).__name__})"
        except TelegramError as exc:
            log.warning("broadcast #%d: a message failed: %s", self.broadcast.id, type(exc).__name__)
            self._finish(item, "failed", "error")
        except asyncio.CancelledError:
            raise               # the row stays 'sending': resolved as 'unknown' on resume
        except Exception as exc:   # a bug here must not stop the others; the request may have gone
            log.error("broadcast #%d: unexpected %s", self.broadcast.id, type(exc).__name__)
            self._finish(item, "unknown", "internal")
        else:
            self._net_failures = 0
            self._finish(item, "sent")
        finally:
            slots.release()

    def _retry_later(self, item: _Item, kind: str) -> None:
        """A transient failure: this recipient waits longer each time, and everyone pauses a little,
        longer while the errors go on (the provider or the network is down: don't burn through the
        audience); after MAX_ATTEMPTS the recipient is `failed` with `kind`."""
        item.attempts += 1
        self._net_failures += 1
        self._outcome.retries += 1
        if item.attempts >= self.MAX_ATTEMPTS:
            self._finish(item, "failed", kind)
        else:
            self.budget.pause(min(30.0, self.BACKOFF_SECONDS * 2 ** min(self._net_failures - 1, 5)))
            self._again(item, min(30.0, self.BACKOFF_SECONDS * 2 ** (item.attempts - 1)))


def _retry_after(exc: RetryAfter) -> float:
    import warnings

    with warnings.catch_warnings():   # PTB 22 warns that this becomes a timedelta: both are handled
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


def _maybe_delivered(exc: NetworkError) -> bool:
    """True when the request may have reached Telegram although no answer came: a read timeout,
    a connection dropped after the request was written. False when Telegram answered an error
    (5xx: no __cause__) or the request never left (connection refused, connect or pool timeout,
    failed write)."""
    import httpx

    cause = exc.__cause__
    if cause is None:
        return False
    never_sent = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.WriteError,
                  httpx.WriteTimeout, httpx.UnsupportedProtocol, httpx.ProxyError)
    return not isinstance(cause, never_sent)


def open_bot(settings, concurrency: int) -> Bot:
    """A Bot for broadcasts, with its own connections (answers to people never wait for them)."""
    request = HTTPXRequest(connection_pool_size=concurrency + 4, read_timeout=20.0, write_timeout=20.0,
                           connect_timeout=10.0, pool_timeout=30.0)
    kwargs = {}
    if settings.api_base_url:
        base = settings.api_base_url
        kwargs = {"base_url": base, "base_file_url": base.rstrip("/").rsplit("/", 1)[0] + "/file/bot"}
    return Bot(settings.require_token(), request=request, **kwargs)


# -- in the bot: scheduled, confirmed and interrupted broadcasts -------------------------------------


class BroadcastService:
    """Runs inside the bot (`python main.py run`): sends broadcasts confirmed in Telegram, the
    scheduled ones when due, and resumes interrupted ones at start, one at a time (urgent alerts
    first). Organizers who composed in Telegram get a live progress message and a final report."""

    POLL_SECONDS = 1.0
    PROGRESS_SECONDS = 3.0

    def __init__(self, settings, db: Database, budget: SendBudget):
        self.settings = settings
        self.db = db
        self.budget = budget
        self.owner = new_owner()
        self.current: Sender | None = None
        self.lane_budgets: dict[str, SendBudget] = {}   # one per channel and process: its rate holds

    async def run(self, application=None, stop: asyncio.Event | None = None) -> None:
        """Until the Telegram `application` stops, or `stop` is set (WhatsApp alone)."""
        stop = stop or asyncio.Event()
        watcher = asyncio.create_task(self._watch(application, stop)) if application is not None else None
        bot: Bot | None = None
        telegram = bool(getattr(self.settings, "telegram_configured", True))
        try:
            while not stop.is_set():
                try:
                    for record in self._due():
                        if stop.is_set():
                            break
                        if bot is None and telegram:
                            bot = open_bot(self.settings, self._concurrency())
                            await bot.initialize()
                        await self._send(bot, record, stop)
                except Exception as exc:   # keep serving; the broadcast resumes at the next pass
                    log.error("broadcast service: %s; retrying in 30 s", type(exc).__name__, exc_info=exc)
                    await _sleep(30, stop)
                await _sleep(self.POLL_SECONDS, stop)
        finally:
            if watcher is not None:
                watcher.cancel()
            if bot is not None:
                await bot.shutdown()

    @staticmethod
    async def _watch(application, stop: asyncio.Event) -> None:
        while application.running:
            await asyncio.sleep(0.2)
        stop.set()

    def _concurrency(self) -> int:
        return max(4, min(100, int(self.budget.rate // 2)))

    def _due(self) -> list[Broadcast]:
        now = time.time()
        return [b for b in self.db.broadcasts_to_send()
                if b.lease_owner is None or b.lease_owner == self.owner or (b.lease_until or 0) < now
                or holder_is_gone(b.lease_owner)]

    async def _send(self, bot: Bot | None, record: Broadcast, stop: asyncio.Event) -> None:
        lanes = await open_lanes(self.settings, self.db, self.owner, self.lane_budgets)
        sender = self.current = Sender(self.db, bot, self.budget, owner=self.owner,
                                       concurrency=self._concurrency(), paid=self.budget.rate > FREE_RATE,
                                       companions=[lane for lane, _client in lanes])
        interrupt = asyncio.Event()
        helpers = [asyncio.create_task(self._interrupt_when(interrupt, stop, record))]
        report = bot is not None and record.report_chat and self.db.channel_of(record.report_chat) == "telegram"
        if report:
            helpers.append(asyncio.create_task(self._report_progress(bot, sender, record.id)))
        try:
            outcome = await sender.run(record.id, stop=interrupt)
        finally:
            self.current = None
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            await close_lanes(lanes)
        if report and outcome.status in ("done", "cancelled"):
            await self._final_report(bot, self.db.broadcast(record.id), outcome)

    async def _interrupt_when(self, interrupt: asyncio.Event, stop: asyncio.Event, record: Broadcast) -> None:
        """Stop the current broadcast when the bot stops, or, for news, when an urgent alert is
        due: the alert goes first, then the news resumes where it stopped."""
        while True:
            if stop.is_set() or (record.topic != "alerts" and any(
                    b.topic == "alerts" and b.id != record.id for b in self._due())):
                if not stop.is_set():
                    log.info("broadcast #%d pauses for an urgent alert", record.id)
                interrupt.set()
                return
            await _sleep(self.POLL_SECONDS, stop)

    async def _report_progress(self, bot: Bot, sender: Sender, broadcast_id: int) -> None:
        """Post a progress message to the organizer and keep it up to date."""
        shown = None
        while True:
            await asyncio.sleep(self.PROGRESS_SECONDS if shown is not None else 0.05)
            progress = sender.progress()
            record = self.db.broadcast(broadcast_id)
            if progress is None or record is None:
                continue
            with use_language(record.report_language or "en"):
                text = _progress_text(broadcast_id, progress)
            if text == shown:
                continue
            await self.budget.take()
            sender.note_sent(record.report_chat)
            try:
                if record.progress_message is None:
                    message = await bot.send_message(record.report_chat, text, parse_mode=ParseMode.HTML)
                    self.db.set_progress_message(broadcast_id, message.message_id)
                else:
                    await bot.edit_message_text(text, chat_id=record.report_chat,
                                                message_id=record.progress_message, parse_mode=ParseMode.HTML)
                shown = text
            except TelegramError as exc:
                log.info("could not show a broadcast's progress: %s", type(exc).__name__)
                shown = text

    async def _final_report(self, bot: Bot, record: Broadcast, outcome: Outcome) -> None:
        counts = outcome.counts
        with use_language(record.report_language or "en"):
            lines = [("✅ " if record.status == "done" else "⏹ ") + "<b>" + escape(
                _("Announcement #{id} finished.", id=record.id) if record.status == "done"
                else _("Announcement #{id} was cancelled.", id=record.id)) + "</b>",
                escape(_("Sent: {n}", n=counts.get("sent", 0))),
                escape(_("Blocked the bot or left Telegram: {n}", n=counts.get("blocked", 0))),
                escape(_("Failed: {n}", n=counts.get("failed", 0)))]
            if counts.get("skipped"):
                lines.append(escape(_("Skipped (unsubscribed or cancelled meanwhile): {n}",
                                      n=counts["skipped"])))
            if counts.get("unknown"):
                lines.append(escape(_("May not have arrived (the bot stopped while sending): {n}",
                                      n=counts["unknown"])))
            text = "\n".join(lines)
            done = sum(counts.get(s, 0) for s in FINAL_STATES)
            final_progress = _progress_text(record.id, Progress(record.audience or done, done, counts, 0.0,
                                                                outcome.elapsed))
        await self.budget.take()
        try:   # the progress message shows the end (it is posted now if the broadcast was quick)
            if record.progress_message is not None:
                await bot.edit_message_text(final_progress, chat_id=record.report_chat,
                                            message_id=record.progress_message, parse_mode=ParseMode.HTML)
            else:
                await bot.send_message(record.report_chat, final_progress, parse_mode=ParseMode.HTML)
        except TelegramError:
            pass
        await self.budget.take()
        try:
            await bot.send_message(record.report_chat, text, parse_mode=ParseMode.HTML)
        except TelegramError as exc:
            log.info("could not send a broadcast's report: %s", type(exc).__name__)


async def open_lanes(settings, db: Database, owner: str, budgets: dict[str, SendBudget]) -> list[tuple]:
    """(sender, client) for each registered channel that is configured, clients started."""
    lanes = []
    for channel, factory in LANES.items():
        budget = budgets.setdefault(channel, SendBudget(lane_rate(settings, channel)))
        made = factory(settings, db, budget, owner)
        if made is not None:
            await made[1].start()
            lanes.append(made)
    return lanes


async def close_lanes(lanes: list[tuple]) -> None:
    for _sender, client in lanes:
        await client.close()


def _progress_text(broadcast_id: int, progress: Progress) -> str:
    percent = int(100 * progress.done / progress.total) if progress.total else 100
    text = _("Announcement #{id}: {done} of {total} done ({percent}%).", id=broadcast_id,
             done=progress.done, total=progress.total, percent=percent)
    if progress.done < progress.total and progress.rate > 0:
        text += " " + _("{rate} per second, about {time} left.", rate=f"{progress.rate:.0f}",
                        time=_duration(progress.eta or 0))
    return "📤 " + escape(text)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d}"


def attach_broadcasts(application, settings, db: Database) -> BroadcastService:
    """Start the broadcast service with the application (and stop it with it)."""
    limiter = application.bot.rate_limiter
    budget = limiter.budget if isinstance(limiter, SharedRateLimiter) else SendBudget(settings.broadcast_rate)
    service = BroadcastService(settings, db, budget)
    application.bot_data["broadcasts"] = service
    if application.job_queue is None:
        log.warning("no job queue: broadcasts are not sent by this bot (install "
                    "python-telegram-bot[job-queue])")
        return service

    async def start(context) -> None:
        context.application.create_task(service.run(context.application), name="broadcasts")

    application.job_queue.run_once(start, when=0, name="broadcasts")
    return service


# -- from the command line ----------------------------------------------------------------------------

class ProgressBar:
    """A progress bar on standard error: a redrawn line on a terminal, else a line now and then."""

    WIDTH = 24

    def __init__(self, stream=sys.stderr, every: float | None = None):
        self.stream = stream
        self.tty = stream.isatty()
        self.every = every if every is not None else (0.25 if self.tty else 10.0)
        self._drawn = False

    def line(self, progress: Progress) -> str:
        fraction = progress.done / progress.total if progress.total else 1.0
        filled = int(self.WIDTH * fraction)
        eta = progress.eta
        left = "--:--" if eta is None else _clock_text(eta)
        return (f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {progress.done}/{progress.total} "
                f"{fraction:4.0%}  {progress.rate:5.1f}/s  {left} left")

    def draw(self, progress: Progress) -> None:
        text = self.line(progress)
        if self.tty:
            self.stream.write("\r" + text.ljust(78))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn and self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _clock_text(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


async def send_from_command_line(settings, db: Database, broadcast_id: int, *, owner: str, rate: float,
                                 resend_unknown: bool = False, stream=sys.stderr) -> Outcome:
    """Send a broadcast from this process with a progress bar; Ctrl-C pauses it."""
    budget = SendBudget(rate)
    concurrency = max(4, min(100, int(rate // 2)))
    bot = open_bot(settings, concurrency) if getattr(settings, "telegram_configured", True) else None
    try:
        if bot is not None:
            await bot.initialize()
    except TelegramError as exc:
        db.release_broadcast(broadcast_id, owner)
        await bot.shutdown()
        return Outcome(broadcast_id, "failed", db.recipient_counts(broadcast_id),
                       error=f"cannot reach Telegram ({type(exc).__name__})")
    lanes = await open_lanes(settings, db, owner, {})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    sender = Sender(db, bot, budget, owner=owner, concurrency=concurrency, paid=rate > FREE_RATE,
                    companions=[lane for lane, _client in lanes])
    bar = ProgressBar(stream)

    async def draw() -> None:
        while True:
            await asyncio.sleep(bar.every)
            progress = sender.progress()
            if progress is not None:
                bar.draw(progress)

    drawer = asyncio.create_task(draw())
    try:
        outcome = await sender.run(broadcast_id, resend_unknown=resend_unknown, stop=stop, pause_on_stop=True)
        progress = sender.progress()
        if progress is not None:
            bar.draw(progress)
        return outcome
    finally:
        drawer.cancel()
        bar.close()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.remove_signal_handler(sig)
            except (NotImplementedError, RuntimeError):
                pass
        await close_lanes(lanes)
        if bot is not None:
            await bot.shutdown()
