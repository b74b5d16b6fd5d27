"""``[memory]`` -> the conversation's memory file, and the mark a saved handle must match.

The file is ``[memory] file``, or ``conversation.json`` in the service's StateDirectory
(systemd sets ``$STATE_DIRECTORY``); without either nothing is kept. A handle is bound to the
service and the model it was issued for: the mark is a digest of the backend, the endpoint, the
project, the location and the model, so a config that changes any of them starts a fresh
session (seeded with the transcript) instead of offering the service a handle it cannot take.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import structlog

from agent.config import AgentConfig
from agent.live.memory import ConversationMemory, fingerprint, forget

__all__ = ["STATE_FILE", "handle_valid_s", "memory_path", "open_memory", "session_mark"]

log = structlog.get_logger(__name__)

STATE_FILE = "conversation.json"

# How long after a session's last connection ended the service still resumes it: two hours
# on the Developer API (and the Firebase proxy in front of it), a day on Vertex AI.
_HANDLE_VALID_S = {"vertex": 86_400.0, "firebase-vertex": 86_400.0}
_DEFAULT_HANDLE_VALID_S = 7_200.0


def memory_path(config: AgentConfig, environ: Mapping[str, str] = os.environ) -> Path | None:
    """Where the memory is kept: ``[memory] file``, else the StateDirectory's file."""
    if config.memory.file is not None:
        return config.memory.file
    state = environ.get("STATE_DIRECTORY", "").split(":")[0]  # several: the first is ours
    return Path(state) / STATE_FILE if state else None


def handle_valid_s(config: AgentConfig) -> float:
    """``[memory] handle_valid_s``, or how long the backend honours a handle."""
    given = config.memory.handle_valid_s
    if given is not None:
        return given
    return _HANDLE_VALID_S.get(config.live.backend, _DEFAULT_HANDLE_VALID_S)


def session_mark(config: AgentConfig) -> str:
    """What a saved handle must have been issued for."""
    live = config.live
    return fingerprint(live.backend, live.endpoint or "", live.project_id or "",
                       live.location, live.model)


def open_memory(config: AgentConfig,
                environ: Mapping[str, str] = os.environ) -> ConversationMemory | None:
    """The memory ``[memory]`` asks for, with what an earlier run saved; None when nothing is
    to be kept (``remember = false`` also deletes the file)."""
    settings = config.memory
    path = memory_path(config, environ)
    if not settings.remember:
        if path is not None:
            forget(path)
        log.info("memory.off", reason="memory.remember is false")
        return None
    if path is None:
        log.info("memory.off", reason="no memory.file and no $STATE_DIRECTORY")
        return None
    return ConversationMemory.open(path, max_turns=settings.max_turns,
                                   max_chars=settings.max_chars,
                                   handle_valid_s=handle_valid_s(config))
