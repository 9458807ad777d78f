"""Delivering announcements on WhatsApp: the WhatsApp lane of a broadcast (see delivery.py).

It shares the broadcast's records with the Telegram lane (the same 'sending' before the request,
outcome after it, crash resume, 'unknown' for a request in flight) and has its own rules:

* **Rate:** the number's throughput, `WHATSAPP_BROADCAST_RATE` messages per second (80 by
  default, Meta's standard tier), and at most one announcement per person every 6 seconds (pair
  rate limit).
* **The 24-hour window:** a free-form message only to people who wrote within the last 24 hours
  (less a margin of 15 minutes); everyone else gets the approved template for their language
  (`WHATSAPP_TEMPLATES`), with the announcement as its one body parameter. A language without a
  template gets the English one (the preview says so); with no English template either, they
  can't be reached outside the window ('failed', no_template).
* **Errors** (WhatsApp's codes): 131047 re-engagement (the window closed meanwhile): sent again
  at once as the template; 131026 undeliverable: 'failed' (undeliverable); 130429 rate limit: the
  whole lane waits, doubling, then retries; 131056 pair rate limit: that person is retried after
  the pair interval, the others go on; 5xx and temporary errors (131000, 131016, 133004) and
  connection errors before the request was written: retried with backoff, five attempts; a
  timeout after it was written: 'unknown' (at most once, as on Telegram); 190 or HTTP 401 (the
  token): everything stops, resumable; template errors (132xxx): 'failed' (template); other
  4xx: 'failed' (bad_request).

A WhatsApp id is a phone number: it is read from `people` just before the request and goes only
to the Graph API, never to a log line, a record or a report.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re

import aiohttp

from ...channels.whatsapp import GraphClient, GraphError
from ...channels.whatsapp.render import TEXT_LIMIT, to_whatsapp
from ...languages import DEFAULT_LANGUAGE, LANGUAGES
from ...storage import Broadcast, Database
from .content import render
from .delivery import LANES, SendBudget, Sender, _Item

log = logging.getLogger(__name__)

WINDOW = dt.timedelta(hours=24) - dt.timedelta(minutes=15)   # a margin for clocks and slow queues
PARAMETER_LIMIT = 1000   # a template's body parameter: one line, no tabs, no runs of 4+ spaces

REENGAGEMENT, UNDELIVERABLE, RATE_LIMIT, PAIR_RATE_LIMIT = 131047, 131026, 130429, 131056
TEMPORARY = {131000, 131016, 133004, 2, 1}   # internal error, service unavailable, server unavailable
AUTH = {190, 0}


def template_for(templates: dict[str, tuple[str, str]], lang: str) -> tuple[str, str] | None:
    """(name, WhatsApp language code) of the template for `lang`, else the English one, else None."""
    return templates.get(lang) or templates.get(DEFAULT_LANGUAGE)


def missing_templates(templates: dict[str, tuple[str, str]]) -> list[str]:
    """Languages without a template of their own (they get the English one, if any)."""
    return [lang for lang in LANGUAGES if lang not in templates]


def template_parameter(html: str) -> str:
    """The announcement as a template's body parameter: WhatsApp's marks, on one line."""
    text = re.sub(r"\s*\n\s*", " · ", to_whatsapp(html))
    text = re.sub(r"[ \t]{2,}", " ", text).strip(" ·")
    return text if len(text) <= PARAMETER_LIMIT else text[:PARAMETER_LIMIT - 1].rstrip() + "…"


class WhatsAppSender(Sender):
    """The WhatsApp lane: Sender's loop and records, WhatsApp's rate, window, errors and retries."""

    channel = "whatsapp"
    PER_CHAT_SECONDS = 6.0        # pair rate limit: about one message every 6 s to the same person
    PAIR_WAIT_SECONDS = 6.0
    MAX_FLOODS = 10               # 130429 / 131056 answers per recipient before giving up

    def __init__(self, db: Database, client: GraphClient, budget: SendBudget,
                 templates: dict[str, tuple[str, str]], *, owner: str | None = None,
                 concurrency: int | None = None, clock=None):
        kwargs = {"clock": clock} if clock else {}
        super().__init__(db, None, budget, owner=owner, concurrency=concurrency, **kwargs)
        self.client = client
        self.templates = templates
        self._templated: set[int] = set()     # recipients to send the template (window closed)
        self._rate_limited = 0

    def _prepare(self, record: Broadcast) -> None:
        self._texts = {lang: to_whatsapp(render(record.topic, record.texts, record.default_language, lang))[:TEXT_LIMIT]
                       for lang in LANGUAGES}
        self._parameters = {lang: template_parameter(record.texts.get(lang) or record.texts[record.default_language])
                            for lang in LANGUAGES}

    def _in_window(self, chat_id: int) -> bool:
        seen = self.db.last_seen(chat_id)
        if not seen:
            return False
        moment = dt.datetime.fromisoformat(seen)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.timezone.utc)
        return dt.datetime.now(dt.timezone.utc) - moment < WINDOW

    def _message(self, item: _Item) -> dict | None:
        if item.chat_id not in self._templated and self._in_window(item.chat_id):
            return {"type": "text", "text": {"body": self._texts[item.language], "preview_url": False}}
        template = template_for(self.templates, item.language)
        if template is None:
            return None
        name, code = template
        return {"type": "template", "template": {"name": name, "language": {"code": code}, "components": [
            {"type": "body", "parameters": [{"type": "text", "text": self._parameters[item.language]}]}]}}

    async def _deliver(self, item: _Item, slots: asyncio.Semaphore) -> None:
        try:
            address = self.db.address_of(item.chat_id)
            if address is None or address[0] != "whatsapp":     # forgotten meanwhile
                self._finish(item, "skipped", "forgotten")
                return
            message = self._message(item)
            if message is None:
                self._finish(item, "failed", "no_template")
                return
            answer = await self.client.post({"messaging_product": "whatsapp", "recipient_type": "individual",
                                             "to": address[1], **message})
        except GraphError as exc:
            self._on_error(item, exc)
        except (aiohttp.ClientConnectorError, aiohttp.ClientOSError) as exc:   # never written
            self._retry_later(item, "network")
            log.info("broadcast #%d: WhatsApp could not be reached (%s)", self.broadcast.id, type(exc).__name__)
        except (asyncio.TimeoutError, aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError):
            self._finish(item, "unknown", "timeout")     # it may have been delivered: not sent again
        except asyncio.CancelledError:
            raise               # the row stays 'sending': resolved as 'unknown' on resume
        except Exception as exc:   # a bug here must not stop the others; the request may have gone
            log.error("broadcast #%d: unexpected %s on WhatsApp", self.broadcast.id, type(exc).__name__)
            self._finish(item, "unknown", "internal")
        else:
            self._net_failures = self._rate_limited = 0
            message_id = ((answer.get("messages") or [{}])[0]).get("id")
            if message_id:
                self.db.record_broadcast_message(self.broadcast.id, item.chat_id, str(message_id))
            self._finish(item, "sent")
        finally:
            slots.release()

    def _on_error(self, item: _Item, exc: GraphError) -> None:
        code, status = exc.code, exc.status
        if code == REENGAGEMENT and item.chat_id not in self._templated:
            self._templated.add(item.chat_id)          # the window closed: the template, at once
            self._again(item, 0.0)
        elif code == REENGAGEMENT:
            self._finish(item, "failed", "reengagement")
        elif code == UNDELIVERABLE:
            self._finish(item, "failed", "undeliverable")
        elif code in (RATE_LIMIT, PAIR_RATE_LIMIT):
            self._outcome.flood_waits += 1
            item.floods += 1
            if item.floods >= self.MAX_FLOODS:
                self._finish(item, "failed", "rate_limit" if code == RATE_LIMIT else "pair_rate_limit")
            elif code == RATE_LIMIT:                    # the number's throughput: everyone waits
                self._rate_limited += 1
                wait = min(30.0, self.BACKOFF_SECONDS * 2 ** min(self._rate_limited - 1, 5))
                self.budget.pause(wait)
                self._again(item, wait)
            else:                                       # this person only
                self._again(item, self.PAIR_WAIT_SECONDS)
        elif code in AUTH or status == 401:
            self.db.end_send(self.broadcast.id, item.chat_id, "pending")
            self._fatal = f"WhatsApp refused the access token (error {code})"
        elif status >= 500 or code in TEMPORARY:
            self._retry_later(item, "server")
        elif code is not None and 132000 <= code < 133000:
            log.warning("broadcast #%d: WhatsApp refused the template (error %s)", self.broadcast.id, code)
            self._finish(item, "failed", "template")
        else:
            log.warning("broadcast #%d: WhatsApp refused a message: HTTP %d, error %s", self.broadcast.id,
                        status, code)
            self._finish(item, "failed", "bad_request")


def whatsapp_lane(settings, db: Database, budget: SendBudget, owner: str) -> tuple[WhatsAppSender, GraphClient]:
    """A WhatsApp sender with its own connections (answers to people never wait for it)."""
    client = GraphClient(settings.whatsapp_api_base_url, settings.whatsapp_phone_number_id,
                         settings.whatsapp_access_token)
    sender = WhatsAppSender(db, client, budget, settings.whatsapp_template_map(), owner=owner,
                            concurrency=max(4, min(100, int(budget.rate // 2))))
    return sender, client


def _lane(settings, db: Database, budget: SendBudget, owner: str):
    return whatsapp_lane(settings, db, budget, owner) if settings.whatsapp_configured else None


LANES["whatsapp"] = _lane
