"""Delivering announcements by SMS (Twilio): the SMS lane of a broadcast (see delivery.py).

It shares the broadcast's records with the other lanes (the same 'sending' before the request,
outcome after it, crash resume, 'unknown' for a request in flight) and has its own rules:

* **Rate:** the number's, `TWILIO_RATE` messages per second (1 by default: a long code; a
  toll-free number or a short code allows more).
* **The text:** plain text in at most 3 segments (channels/sms/render.py `announcement`): the
  header, the announcement and the footer on how to stop, in the recipient's language; a long
  announcement is cut between words, the footer kept.
* **Errors** (Twilio's codes): 21610, the person replied STOP: 'blocked' (opted_out), their
  announcements stop and they are not tried again; 429 and 5xx: retried with backoff, five
  attempts (429: the whole lane waits too); connection errors before the request was written: the
  same; a timeout or a dropped connection after it was written: 'unknown' (at most once, as on the
  other channels); 401 or 20003 (the credentials): everything stops, resumable; other 4xx (an
  invalid number, 21211...): 'failed' (bad_request).

A phone number is read from `people` just before the request and goes only to Twilio's API, never
to a log line, a record or a report.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp

from ...channels.sms import TwilioClient, TwilioError
from ...channels.sms.render import announcement
from ...i18n import _, use_language
from ...languages import LANGUAGES
from ...storage import Broadcast, Database
from .content import FOOTER, TOPIC_HEADERS
from .delivery import LANES, SendBudget, Sender, _Item

log = logging.getLogger(__name__)

OPTED_OUT = 21610
AUTH = {20003}


def sms_text(record: Broadcast, language: str) -> str:
    """The announcement as an SMS to someone whose language is `language`."""
    body = record.texts.get(language) or record.texts[record.default_language]
    with use_language(language):
        return announcement(_(TOPIC_HEADERS[record.topic]), body, _(FOOTER))


class SmsSender(Sender):
    """The SMS lane: Sender's loop and records, the number's rate, Twilio's errors and retries."""

    channel = "sms"
    PER_CHAT_SECONDS = 1.0

    def __init__(self, db: Database, client: TwilioClient, budget: SendBudget, *, owner: str | None = None,
                 concurrency: int | None = None, clock=None):
        kwargs = {"clock": clock} if clock else {}
        super().__init__(db, None, budget, owner=owner, concurrency=concurrency, **kwargs)
        self.client = client
        self._rate_limited = 0

    def _prepare(self, record: Broadcast) -> None:
        self._texts = {lang: sms_text(record, lang) for lang in LANGUAGES}

    async def _deliver(self, item: _Item, slots: asyncio.Semaphore) -> None:
        try:
            address = self.db.address_of(item.chat_id)
            if address is None or address[0] != "sms":     # forgotten meanwhile
                self._finish(item, "skipped", "forgotten")
                return
            await self.client.post(address[1], self._texts[item.language])
        except TwilioError as exc:
            self._on_error(item, exc)
        except (aiohttp.ClientConnectorError, aiohttp.ClientOSError) as exc:   # never written
            self._retry_later(item, "network")
            log.info("broadcast #%d: Twilio could not be reached (%s)", self.broadcast.id, type(exc).__name__)
        except (asyncio.TimeoutError, aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError):
            self._finish(item, "unknown", "timeout")     # it may have been delivered: not sent again
        except asyncio.CancelledError:
            raise               # the row stays 'sending': resolved as 'unknown' on resume
        except Exception as exc:   # a bug here must not stop the others; the request may have gone
            log.error("broadcast #%d: unexpected %s on SMS", self.broadcast.id, type(exc).__name__)
            self._finish(item, "unknown", "internal")
        else:
            self._net_failures = self._rate_limited = 0
            self._finish(item, "sent")
        finally:
            slots.release()

    def _on_error(self, item: _Item, exc: TwilioError) -> None:
        code, status = exc.code, exc.status
        if code == OPTED_OUT:                               # they replied STOP: never again
            self._finish(item, "blocked", "opted_out")
            self.db.mark_unreachable(item.chat_id)
        elif code in AUTH or status == 401:
            self.db.end_send(self.broadcast.id, item.chat_id, "pending")
            self._fatal = f"Twilio refused the account's credentials (error {code})"
        elif status == 429:                                 # too fast for the number: everyone waits
            self._outcome.flood_waits += 1
            self._rate_limited += 1
            self.budget.pause(min(30.0, self.BACKOFF_SECONDS * 2 ** min(self._rate_limited - 1, 5)))
            self._retry_later(item, "rate_limit")
        elif status >= 500:
            self._retry_later(item, "server")
        else:
            log.warning("broadcast #%d: Twilio refused a message: HTTP %d, error %s", self.broadcast.id,
                        status, code)
            self._finish(item, "failed", "bad_request")


def sms_lane(settings, db: Database, budget: SendBudget, owner: str) -> tuple[SmsSender, TwilioClient]:
    """An SMS sender with its own connections; the send budget paces it (the client does not)."""
    client = TwilioClient(settings.twilio_api_base_url, settings.twilio_account_sid, settings.twilio_auth_token,
                          settings.twilio_from_number, rate=1e6)
    sender = SmsSender(db, client, budget, owner=owner, concurrency=max(2, min(20, int(budget.rate))))
    return sender, client


def _lane(settings, db: Database, budget: SendBudget, owner: str):
    return sms_lane(settings, db, budget, owner) if settings.sms_configured else None


LANES["sms"] = _lane
