"""Reload the knowledge base while the bot runs, never replacing a good one with a broken one."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path

from .knowledge import Issue, load_knowledge

log = logging.getLogger(__name__)


@dataclass
class ReloadResult:
    ok: bool
    entries: int
    issues: list[Issue] = field(default_factory=list)
    added: list[str] = field(default_factory=list)     # entry ids the reload brought in
    removed: list[str] = field(default_factory=list)   # entry ids gone (file deleted, id changed)

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.level == "error"]


def reload_knowledge(engine, directory: Path) -> ReloadResult:
    """Load and index `directory`; swap it into the engine only if it has no errors."""
    kb, issues = load_knowledge(directory)
    errors = [i for i in issues if i.level == "error"]
    if errors:
        for issue in errors:
            log.error("knowledge reload refused: %s", issue)
        log.error("still serving the last good knowledge base (%d entries)", len(engine.knowledge.kb))
        return ReloadResult(False, len(engine.knowledge.kb), issues)
    try:
        knowledge = type(engine.knowledge).build(kb)   # engine.Knowledge, without importing the engine
    except Exception as exc:   # training failed: keep answering with the model that works
        log.exception("knowledge reload refused: training the matcher failed (%s); still serving "
                      "the last good knowledge base (%d entries)", type(exc).__name__, len(engine.knowledge.kb))
        issue = Issue("error", str(directory), None, f"training the matcher failed ({type(exc).__name__}); "
                      "nothing changed. Run python main.py kb check, and tell the developers if it passes")
        return ReloadResult(False, len(engine.knowledge.kb), [*issues, issue])
    before = set(engine.knowledge.kb.entries)
    added, removed = sorted(set(kb.entries) - before), sorted(before - set(kb.entries))
    engine.knowledge = knowledge  # one assignment: a message sees the old or the new
    from . import lastgood
    lastgood.save(directory, engine.db.path)   # what the bot starts from if a later edit breaks
    log.info("knowledge reloaded: %d entries%s%s", len(kb),
             "; added: " + ", ".join(added) if added else "",
             "; removed: " + ", ".join(removed) if removed else "")
    return ReloadResult(True, len(kb), issues, added, removed)


async def watch_knowledge(engine, directory: Path, stop: asyncio.Event | None = None) -> None:
    """Reload whenever a YAML file under `directory` changes (debounced by watchfiles)."""
    from watchfiles import awatch

    async for changes in awatch(directory, stop_event=stop, debounce=500, step=100,
                                watch_filter=lambda _change, path: path.endswith((".yaml", ".yml"))):
        log.info("knowledge files changed (%d); reloading", len(changes))
        try:
            await asyncio.to_thread(reload_knowledge, engine, directory)
        except Exception as exc:   # never let one bad edit end the watching: the next edit must go live
            log.error("knowledge reload failed (%s); still serving the last good knowledge base "
                      "(%d entries); the next saved edit is tried again", type(exc).__name__,
                      len(engine.knowledge.kb))
