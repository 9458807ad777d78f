"""The package's layout (issue 12): core, channels, features; features register with the engine
in one place; no import cycles, counting imports inside functions too."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOT = ROOT / "bot"
SHIMS = {"bot.composer", "bot.subscriptions", "bot.delivery", "bot.broadcast", "bot.telegram_app",
         "bot.terminal"}   # old names kept for existing imports


CHANNEL_SENDERS = {"bot.features.broadcasts.delivery", "bot.features.broadcasts.whatsapp",
                   "bot.features.broadcasts.sms"}


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """Every bot module `path` imports, at module level or in a function, except under
    `if TYPE_CHECKING:` (annotations only)."""
    name = _module(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                   and getattr(node.test, "id", "") == "TYPE_CHECKING" for n in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(max(0, node.level - 1)):
                base = base.rpartition(".")[0]
            target = (f"{base}.{node.module}" if node.module else base) if node.level else node.module
            candidates = [target] + [f"{target}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            candidates = [a.name for a in node.names]
        else:
            continue
        found |= {c for c in candidates if c in modules and c != name}
    return found


def _graph() -> dict[str, set[str]]:
    paths = [p for p in BOT.rglob("*.py")]
    modules = {_module(p) for p in paths}
    return {_module(p): _imports(p, modules) for p in paths if _module(p) not in SHIMS}


def test_no_import_cycles_even_through_imports_inside_functions():
    graph = _graph()
    cycles = []

    def visit(node, stack, seen):
        for nxt in graph.get(node, ()):
            if nxt in SHIMS:
                continue
            if nxt in stack:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in seen:
                seen.add(nxt)
                visit(nxt, stack + [nxt], seen)

    for start in graph:
        visit(start, [start], {start})
    assert cycles == []


def test_features_never_import_the_engine_or_a_channel():
    graph = _graph()
    for module, targets in graph.items():
        if module.startswith("bot.features"):
            assert "bot.engine" not in targets, module
            if module not in CHANNEL_SENDERS:   # a channel's own sender may use its client
                assert not any(t.startswith("bot.channels.") for t in targets), module


def test_the_core_imports_no_feature_except_through_register_all():
    graph = _graph()
    for module in ("bot.engine", "bot.storage", "bot.knowledge", "bot.matcher", "bot.messages"):
        assert {t for t in graph[module] if t.startswith("bot.features")} <= {"bot.features"}, module


def test_every_module_imports_alone():
    modules = sorted(m for m in _graph() if m != "bot.__main__")
    code = ("import importlib, sys\nfailed = []\nfor name in sys.argv[1:]:\n"
            "    for loaded in [m for m in sys.modules if m.startswith('bot')]:\n"
            "        del sys.modules[loaded]\n"
            "    try:\n        importlib.import_module(name)\n"
            "    except Exception as exc:\n        failed.append(f'{name}: {exc!r}')\n"
            "print('\\n'.join(failed))\nsys.exit(1 if failed else 0)\n")
    result = subprocess.run([sys.executable, "-c", code, *modules], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_tree_shows_core_channels_and_features():
    for path in ("engine.py", "matcher.py", "knowledge.py", "storage.py", "messages.py",
                 "channels/telegram.py", "channels/whatsapp/__init__.py", "channels/terminal.py",
                 "features/staff.py", "features/subscriptions.py", "features/broadcasts/__init__.py"):
        assert (BOT / path).exists(), path


def test_commands_and_buttons_come_from_the_registry(engine):
    from bot.engine import COMMANDS

    registered = set(engine.commands)
    assert {name for name, _desc in COMMANDS} <= registered
    assert {"reload", "report", "grant", "revoke", "broadcast", "cancel"} <= registered
    source = (BOT / "engine.py").read_text(encoding="utf-8")
    assert 'command == "' not in source and 'kind == "' not in source   # no if-chain on names or prefixes
