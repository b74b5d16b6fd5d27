"""A whole document: from the dict ``tomllib`` returns to `AgentConfig`.

Secrets written inline are caught first, so the message says how to do it right instead of
"unknown key"; then every section is read (`agent.config.sections`, `agent.config.gpio`), and
rules between sections (push-to-talk needs its button) run once all are read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agent.config.gpio import read_gpio
from agent.config.model import AgentConfig
from agent.config.problems import ConfigProblem, KeyPath
from agent.config.reader import Table
from agent.config.sections import (
    read_audio,
    read_camera,
    read_health,
    read_listen,
    read_live,
    read_logging,
    read_memory,
    read_metrics,
    read_reconnect,
)
from agent.config.usage import read_budget, read_usage

__all__ = ["MAX_NESTING", "SECRET_ADVICE", "SECTIONS", "build_config", "find_inline_secrets"]

MAX_NESTING = 32
"""The deepest a value may nest (a custom tool's schema is the deepest part of a config)."""

SECTIONS = ("live", "reconnect", "audio", "listen", "camera", "gpio", "tools", "logging",
            "health", "metrics", "memory", "usage", "budget")

SECRET_ADVICE = (
    "secrets do not belong in the config file; put the key in a file only root can read "
    "and name it in live.credentials.api_key_file, or load it with the unit's "
    "LoadCredential=api-key:/etc/edge-agent/api-key (live.credentials.credential), or set "
    "the GEMINI_API_KEY environment variable (live.credentials.env)")

# Values that are credentials whatever key holds them: Google API keys, OAuth access tokens,
# Live API ephemeral tokens.
_SECRET_VALUE = re.compile(r"AIza[0-9A-Za-z_\-]{30,}|ya29\.[0-9A-Za-z_\-]{20,}|"
                           r"auth_tokens/[0-9A-Za-z_\-]{8,}")
# Keys whose string value is a secret (api_key, token, secret, password, ...).
_SECRET_KEY = re.compile(r"(?i)(^|_)(api_?key|key|token|access_token|secret|password|passwd)$")


def too_deep(doc: Any) -> KeyPath | None:
    """The first key path nested deeper than `MAX_NESTING`, or None (walked without
    recursion: the document is hostile until this has passed)."""
    stack: list[tuple[KeyPath, Any]] = [((), doc)]
    while stack:
        path, value = stack.pop()
        if len(path) > MAX_NESTING:
            return path[: MAX_NESTING + 1]
        if isinstance(value, Mapping):
            stack.extend(((*path, k), v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend(((*path, i), v) for i, v in enumerate(value))
    return None


def find_inline_secrets(doc: Any, loc: KeyPath = ()) -> list[KeyPath]:
    """Key paths of string values that are (or look like) credentials."""
    found: list[KeyPath] = []
    if isinstance(doc, Mapping):
        for key, value in doc.items():
            path = (*loc, key)
            if isinstance(value, str) and (_SECRET_KEY.search(key) or _SECRET_VALUE.search(value)):
                found.append(path)
            else:
                found += find_inline_secrets(value, path)
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            if isinstance(value, str) and _SECRET_VALUE.search(value):
                found.append((*loc, i))
            else:
                found += find_inline_secrets(value, (*loc, i))
    return found


def _without(doc: Any, paths: list[KeyPath]) -> Any:
    """A copy of ``doc`` without the values at ``paths`` (already reported)."""
    if not paths:
        return doc
    if isinstance(doc, Mapping):
        heads = {p[0] for p in paths if len(p) == 1}
        return {k: _without(v, [p[1:] for p in paths if len(p) > 1 and p[0] == k])
                for k, v in doc.items() if k not in heads}
    if isinstance(doc, list):
        heads = {p[0] for p in paths if len(p) == 1}
        return [_without(v, [p[1:] for p in paths if len(p) > 1 and p[0] == i])
                for i, v in enumerate(doc) if i not in heads]
    return doc


def build_config(doc: Mapping[str, Any], *, base_dir: Path, source: Path | None,
                 problems: list[ConfigProblem]) -> AgentConfig:
    """Parse a whole document; problems go to ``problems`` (the result is only valid when
    none were added)."""
    deep = too_deep(doc)
    if deep is not None:  # nothing below is read: every reader would recurse into it
        problems.append(ConfigProblem(f"nested deeper than {MAX_NESTING} levels", deep))
        return AgentConfig(source=source)
    secrets = find_inline_secrets(doc)
    for path in secrets:
        problems.append(ConfigProblem(SECRET_ADVICE, path))
    doc = _without(doc, secrets)
    top = Table(doc, (), problems)
    live = read_live(top.section("live"), base_dir)
    reconnect = read_reconnect(top.section("reconnect"))
    audio_table = top.section("audio")
    audio = read_audio(audio_table, base_dir)
    listen = read_listen(top.section("listen"), audio_table, audio, base_dir)
    camera = read_camera(top.section("camera"), base_dir)
    gpio = read_gpio(top)
    logging = read_logging(top.section("logging"))
    health = read_health(top.section("health"))
    metrics = read_metrics(top.section("metrics"), base_dir)
    memory = read_memory(top.section("memory"), base_dir)
    usage = read_usage(top.section("usage"), base_dir)
    budget = read_budget(top.section("budget"), usage)
    top.finish()
    if listen.mode == "push_to_talk" and (gpio.status is None
                                          or gpio.status.push_to_talk_button is None):
        written = isinstance(doc.get("listen"), Mapping) and "mode" in doc["listen"]
        problems.append(ConfigProblem(
            "needs a button: set gpio.status.push_to_talk_button to its GPIO number",
            ("listen", "mode") if written else ("audio", "push_to_talk")))
    return AgentConfig(live=live, reconnect=reconnect, audio=audio, listen=listen, camera=camera,
                       gpio=gpio, logging=logging, health=health, metrics=metrics,
                       memory=memory, usage=usage, budget=budget, source=source)
