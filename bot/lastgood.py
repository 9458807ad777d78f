"""The last good knowledge base, kept beside the database.

Every time the knowledge base passes the check (at start, and at each live reload), its files are
copied to `knowledge-last-good/` in the database's folder. When the knowledge base fails the check
at start (an edit the live reload refused, then a restart), the bot starts from that copy with a
loud warning instead of refusing to start, and keeps watching `knowledge/`: the first fixed edit
goes live. Only when there is no copy does it refuse.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
from pathlib import Path

from .knowledge import Issue, KnowledgeBase, load_knowledge

log = logging.getLogger(__name__)

FOLDER = "knowledge-last-good"
EXTRA_FILES = ("review-state.json",)


def folder_for(database: str | os.PathLike) -> Path | None:
    """Where the last good copy lives for this database (none for an in-memory database)."""
    if str(database) == ":memory:":
        return None
    return Path(database).resolve().parent / FOLDER


def save(directory: Path, database: str | os.PathLike) -> None:
    """Copy the knowledge files that just passed the check; the old copy is replaced at once
    (a new folder renamed into place), so a crash leaves the old copy or the new one."""
    target = folder_for(database)
    if target is None:
        return
    staging = target.with_name(f"{FOLDER}.new-{os.getpid()}")
    retired = target.with_name(f"{FOLDER}.old-{os.getpid()}")
    try:
        shutil.rmtree(staging, ignore_errors=True)
        for path in sorted(directory.rglob("*.yaml")):
            if path.name.startswith("."):
                continue
            copy = staging / path.relative_to(directory)
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, copy)
        staging.mkdir(parents=True, exist_ok=True)
        for name in EXTRA_FILES:
            if (directory / name).is_file():
                shutil.copy2(directory / name, staging / name)
        if target.exists():
            target.rename(retired)
        staging.rename(target)
        shutil.rmtree(retired, ignore_errors=True)
    except OSError as exc:
        log.warning("could not keep a copy of the knowledge base as the last good version (%s: %s)",
                    type(exc).__name__, exc.strerror)
        shutil.rmtree(staging, ignore_errors=True)


def load(database: str | os.PathLike) -> tuple[KnowledgeBase, list[Issue], Path, dt.datetime] | None:
    """The last good copy, if there is one and it still passes the check: (knowledge base,
    issues, its folder, when it was saved)."""
    folder = folder_for(database)
    if folder is None or not folder.is_dir():
        return None
    kb, issues = load_knowledge(folder)
    if not kb.entries or any(i.level == "error" for i in issues):
        return None
    saved = dt.datetime.fromtimestamp(folder.stat().st_mtime).astimezone()
    return kb, issues, folder, saved
