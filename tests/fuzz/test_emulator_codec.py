"""Hostile input for the emulator: its wire parser, and whole connections to a running
emulator. Only clean outcomes: a parsed message or the service's close (1007/1008, with a
reason), never 1011, never an error or a traceback in the logs."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from agent.emulator import Emulator, EmulatorConfig, wire
from agent.emulator.pytest_plugin import DEVELOPER_PATH
from tests.support.hostile_setups import nested

CLEAN_CLOSES = {1000, 1007, 1008}

# --- values ------------------------------------------------------------------------------

numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([10**400, -(10**400), 2**31, 2**63, 0, -1]),
    st.floats(allow_nan=True, allow_infinity=True),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=20))


def sometimes(
    usual: st.SearchStrategy[Any], rare: st.SearchStrategy[Any], odds: int
) -> st.SearchStrategy[Any]:
    """``rare`` one time in ``odds + 1``, else ``usual``."""
    return st.integers(min_value=0, max_value=odds).flatmap(lambda i: rare if i == 0 else usual)


json_values = sometimes(
    st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
        ),
        max_leaves=16,
    ),
    st.integers(min_value=90, max_value=400).map(nested),  # around the depth limit
    odds=8,
)


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


REQUIRED = frozenset({"model"})


def shaped(template: Any, calm: int = 3) -> st.SearchStrategy[Any]:
    """Values of the template's shape, either casing for each key, any member but the model
    missing, and at any node, one time in ``calm + 1``, any JSON value instead."""
    if isinstance(template, st.SearchStrategy):
        well_formed: st.SearchStrategy[Any] = template
    elif isinstance(template, list):
        well_formed = st.lists(shaped(template[0], calm), max_size=3)
    else:
        members = {k: st.tuples(st.booleans(), shaped(v, calm)) for k, v in template.items()}
        well_formed = st.fixed_dictionaries(
            {k: v for k, v in members.items() if k in REQUIRED},
            optional={k: v for k, v in members.items() if k not in REQUIRED},
        ).map(lambda d: {(_snake(k) if snake else k): v for k, (snake, v) in d.items()})
    return sometimes(well_formed, json_values, calm)


def enum(*values: str) -> st.SearchStrategy[Any]:
    return st.sampled_from([*values, "", "NOPE"])


ints = st.one_of(st.integers(min_value=0, max_value=5000), numbers, st.text(max_size=25))

SETUP = {
    "model": st.sampled_from(["models/m"] * 8 + ["projects/p/models/m", "m", "", "models/"]),
    "generationConfig": {
        "responseModalities": [enum("AUDIO", "TEXT", "IMAGE")],
        "speechConfig": {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": st.text()}}},
        "mediaResolution": enum("MEDIA_RESOLUTION_LOW", "MEDIA_RESOLUTION_MEDIUM"),
        "temperature": numbers,
    },
    "realtimeInputConfig": {
        "automaticActivityDetection": {
            "disabled": st.booleans(),
            "startOfSpeechSensitivity": enum("START_SENSITIVITY_HIGH", "START_SENSITIVITY_LOW"),
            "endOfSpeechSensitivity": enum("END_SENSITIVITY_HIGH", "END_SENSITIVITY_LOW"),
            "prefixPaddingMs": ints,
            "silenceDurationMs": ints,
        },
        "activityHandling": enum("NO_INTERRUPTION", "START_OF_ACTIVITY_INTERRUPTS"),
    },
    "sessionResumption": {
        "handle": st.sampled_from(["", "", "", "no-such-handle"]),
        "transparent": st.sampled_from([False, False, False, True]),
    },
    "contextWindowCompression": {"triggerTokens": ints, "slidingWindow": {"targetTokens": ints}},
    "tools": [{"functionDeclarations": [{"name": st.text(min_size=1, max_size=10)}]}],
    "systemInstruction": {"parts": [{"text": st.text(max_size=20)}]},
    "inputAudioTranscription": {},
    "outputAudioTranscription": {},
}
REALTIME = {
    "audio": {"mimeType": enum("audio/pcm", "audio/pcm;rate=24000"), "data": st.just("AAAA")},
    "video": {"mimeType": enum("image/jpeg"), "data": st.just("/9j/")},
    "text": st.text(max_size=30),
    "activityStart": {},
    "activityEnd": {},
    "audioStreamEnd": st.booleans(),
    "mediaChunks": [{"mimeType": enum("audio/pcm"), "data": st.just("AAAA")}],
}
CONTENT = {
    "turns": [{"role": enum("user", "model"), "parts": [{"text": st.text(max_size=20)}]}],
    "turnComplete": st.booleans(),
}
TOOL_RESPONSE = {"functionResponses": [{"id": st.text(max_size=8), "name": st.text(max_size=8),
                                        "response": json_values}]}  # fmt: skip

setups = shaped(SETUP).map(lambda body: {"setup": body})
# mostly well-formed: most connections get past setup, to the fake model
mild_setups = shaped(SETUP, calm=40).map(lambda body: {"setup": body})
messages = st.one_of(
    shaped({"realtimeInput": REALTIME}),
    shaped({"clientContent": CONTENT}),
    shaped({"toolResponse": TOOL_RESPONSE}),
    shaped({"contextUpdate": json_values}),
    st.dictionaries(st.text(max_size=15), json_values, max_size=3),
)


def _frame(message: Any) -> str:
    return json.dumps(message)


def _deep(depth: int) -> str:
    """A frame nested far deeper than a JSON encoder would write."""
    return '{"setup": {"model": "models/m", "tools": ' + "[" * depth + "]" * depth + "}}"


frames = st.one_of(
    st.integers(min_value=90, max_value=200_000).map(_deep),
    messages.map(_frame),
    setups.map(_frame),
    st.binary(max_size=64),
    st.text(max_size=64),
    setups.map(_frame).flatmap(lambda f: st.integers(0, len(f)).map(lambda n: f[:n])),
)

# --- the parser --------------------------------------------------------------------------


@given(frames)
def test_any_frame_parses_or_is_refused_cleanly(frame: str | bytes) -> None:
    try:
        wire.parse_client_message(wire.load_json(frame))
    except wire.ProtocolViolation as exc:
        assert exc.code in (1007, 1008) and exc.reason


@given(setups)
def test_any_setup_parses_or_is_refused_cleanly(message: dict[str, Any]) -> None:
    try:
        wire.parse_client_message(wire.load_json(_frame(message)), developer_api=False)
    except wire.ProtocolViolation as exc:
        assert exc.code in (1007, 1008) and exc.reason


# --- whole connections -------------------------------------------------------------------


class Background:
    """An emulator on its own event loop thread, for clients written as plain sync code."""

    def __init__(self, time_scale: float = 0.01) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        # Five seconds of wall clock for the setup message whatever the pace: on a loaded
        # machine a client can take longer than the 0.3 s a hundredth of the service's 30 s
        # would leave, and the honest 1011 "Deadline expired" is not what these tests look for.
        config = EmulatorConfig(
            time_scale=time_scale,
            setup_timeout_s=5.0 / time_scale,
            connection_lifetime_s=None,
            record=False,
        )
        self.emulator = Emulator(config)
        asyncio.run_coroutine_threadsafe(self.emulator.start(), self.loop).result(10)
        self.url = self.emulator.url + DEVELOPER_PATH + "?key=k"

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.emulator.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


class Problems(logging.Handler):
    """Errors and tracebacks logged through the standard library (websockets logs a failed
    handler's traceback there)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info:
            self.found.append(record.getMessage())


@contextlib.contextmanager
def serving(time_scale: float) -> Iterator[tuple[Background, Problems, list[Any]]]:
    problems = Problems()
    logging.getLogger().addHandler(problems)
    background = Background(time_scale)
    try:
        with structlog.testing.capture_logs() as events:
            yield background, problems, events
    finally:
        background.close()
        logging.getLogger().removeHandler(problems)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Background, Problems, list[Any]]]:
    """The emulator at a hundred times the service's pace (its deadlines too)."""
    with serving(0.01) as served:
        yield served


@pytest.fixture
def served_at_the_services_pace() -> Iterator[tuple[Background, Problems, list[Any]]]:
    """The emulator with the service's own deadlines: 30 s for the setup message, not 0.3 s,
    which a client on a loaded machine may miss while it opens many connections."""
    with serving(1.0) as served:
        yield served


def _exchange(url: str, first: str | bytes, then: list[str]) -> tuple[int | None, str]:
    """Send the frames; the server's close (code, reason), or (1000, "") once a text turn
    has been answered, or nothing came for a while (an activity left open holds the turn),
    and the client closed."""
    with connect(url, open_timeout=5, close_timeout=2) as ws:
        try:
            ws.send(first)
            for frame in then:
                ws.send(frame)
            ws.send(_frame({"realtimeInput": {"text": "hi"}}))
            for _ in range(200):
                reply = ws.recv(timeout=0.5)
                data = reply if isinstance(reply, bytes) else reply.encode()
                if b"setupComplete" in data:
                    event("set up")
                if b"turnComplete" in data:
                    event("answered")
                    break
        except ConnectionClosed as exc:
            return (exc.rcvd.code, exc.rcvd.reason) if exc.rcvd else (None, "")
        except TimeoutError:
            pass
    return 1000, ""


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    first=sometimes(mild_setups.map(_frame), frames, odds=3),
    then=st.lists(messages.map(_frame), max_size=2),
)
def test_hostile_connections_end_cleanly(
    served: tuple[Background, Problems, list[Any]], first: str | bytes, then: list[str]
) -> None:
    background, problems, events = served
    code, reason = _exchange(background.url, first, then)
    event(f"closed {code}")  # --hypothesis-show-statistics: how many got past setup
    assert code in CLEAN_CLOSES, (code, reason)
    assert code == 1000 or reason
    errors = [e for e in events if e["log_level"] in ("error", "critical")]
    assert not errors and not problems.found
    assert background.emulator.stats.internal_errors == 0


def test_many_connections_at_once_are_refused_not_crashed(
    served_at_the_services_pace: tuple[Background, Problems, list[Any]],
) -> None:
    """More clients than the limit: the extra ones get HTTP 503, nobody gets 1011."""
    background, problems, _ = served_at_the_services_pace
    limit = background.emulator.config.limits.max_connections
    with contextlib.ExitStack() as stack:
        opened, refused = 0, 0
        for _ in range(limit + 5):
            try:
                ws = stack.enter_context(connect(background.url, open_timeout=5))
                ws.send(_frame({"setup": {"model": "models/m"}}))
                ws.recv(timeout=5)
                opened += 1
            except Exception as exc:  # websockets' InvalidStatus
                assert "503" in str(exc)
                refused += 1
    assert opened == limit and refused == 5
    assert not problems.found
