"""Six hours of session time per backend, in the emulator's accelerated time, with credentials
that expire every 30 minutes (Vertex: 60): no fatal exit, no audio lost, every connection made
with a valid credential. Prints each backend's refreshes and the reconnection gaps they caused
(``pytest -s``).

At 1/1000 of real time a 10-minute connection lasts 0.6 s and a 30-minute credential 1.8 s of
wall-clock time. Credential lifetimes are wall-clock seconds (servers state absolute times), so
they are set to the scaled values; the microphone is fed in real time, 40 ms every 40 ms, so a
reconnection gap is measured against the real replay window (5 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from agent.emulator.config import EmulatorConfig, TokenLifetimes
from agent.emulator.server import Emulator
from agent.live.credentials import KeptCredential
from agent.live.firebase_tokens import AppCheckProvider, FirebaseAuthProvider
from agent.live.model import (
    Backend,
    FirebaseGoogleAIBackend,
    FirebaseVertexAIBackend,
    GeminiDeveloperBackend,
    LiveGenerativeModel,
    VertexAIBackend,
)
from agent.live.resilient import ReconnectPolicy, ResilientSession, SessionState, SessionStats
from agent.live.token_client import TokenServerProvider
from agent.live.types import AUDIO_INPUT_MIME, GenerativeContentBlob
from agent.live.vertex_auth import GoogleAuthProvider
from tests.support.service_account import write_service_account
from tests.support.token_server import REAL_KEY, token_server

pytestmark = pytest.mark.slow

SCALE = 0.001
SESSION_S = 6 * 3600.0
CHUNK = b"\x01\x00" * 640  # 40 ms of quiet audio
POLICY = ReconnectPolicy(backoff_base_s=0.01, backoff_cap_s=0.1, stable_after_s=10 * SCALE,
                         attempts_per_minute=30 / SCALE, handover_margin_s=2 * SCALE)
FIREBASE_KEY = "AIzaSyFIREBASEwebKEYforTHElongRUN0000001"


@dataclass
class Run:
    backend: Backend
    kept: list[KeptCredential]
    emulator: Emulator
    gaps: list[tuple[float, bool]] = field(default_factory=list)  # (seconds, after a fetch)


@contextlib.asynccontextmanager
async def backend_run(name: str, tmp: Path) -> AsyncIterator[Run]:
    life = 1800 * SCALE
    lifetimes = TokenLifetimes(access=3600 * SCALE, id_token=life, app_check=life)
    key = REAL_KEY if name == "gemini" else FIREBASE_KEY
    config = EmulatorConfig(
        api_key=key, time_scale=SCALE, record=False, rest=True, token_lifetimes=lifetimes,
        check_tokens=name in ("gemini", "vertex"),
        require_app_check=name.startswith("firebase"),
        require_firebase_auth=name.startswith("firebase"))
    async with Emulator(config) as emulator:
        if name == "gemini":
            with token_server(tmp, emulator.rest_url, expire_s=life,
                              new_session_expire_s=life, per_device_burst=1000,
                              per_device_per_minute=60_000.0) as server:
                secret = server.device_secret_file.read_text().strip()
                token = KeptCredential(TokenServerProvider(
                    server.url, "kitchen", lambda: secret, ca_file=server.cert))
                yield Run(GeminiDeveloperBackend(api_key=token, endpoint=emulator.url),
                          [token], emulator)
            return
        if name == "vertex":
            sa = write_service_account(tmp / "sa.json", emulator.rest_url + "/oauth2/token")
            token = KeptCredential(GoogleAuthProvider(sa))
            yield Run(VertexAIBackend(access_token=token, project_id="edge-test",
                                      endpoint=emulator.url), [token], emulator)
            return
        app_check = KeptCredential(AppCheckProvider(url=emulator.rest_url + "/app-check/token"))
        auth = KeptCredential(FirebaseAuthProvider(
            lambda: FIREBASE_KEY, custom_token=None, identity_url=emulator.rest_url,
            secure_token_url=emulator.rest_url))
        kind = FirebaseGoogleAIBackend if name == "firebase-google" else FirebaseVertexAIBackend
        yield Run(kind(api_key=FIREBASE_KEY, project_id="p", app_id="1:2:web:3",
                       app_check_token=app_check, auth_token=auth, endpoint=emulator.url),
                  [app_check, auth], emulator)


@pytest.mark.parametrize("name", ["gemini", "vertex", "firebase-google", "firebase-vertex"])
async def test_six_hours_with_expiring_credentials(name: str, tmp_path: Path) -> None:
    async with backend_run(name, tmp_path) as run:
        model = LiveGenerativeModel(backend=run.backend, model="gemini-live-2.5-flash-preview")
        session = ResilientSession(model, POLICY)
        left_live: list[tuple[float, int]] = []

        def on_state(stats: SessionStats) -> None:
            fetches = sum(k.fetches for k in run.kept)
            if stats.state is SessionState.LIVE and left_live:
                started, before = left_live.pop()
                run.gaps.append((time.monotonic() - started, fetches > before))
            elif stats.state is not SessionState.LIVE and not left_live \
                    and stats.connections > 0:
                left_live.append((time.monotonic(), fetches))

        session.add_listener(on_state)
        sent = 0
        async with session:
            await asyncio.wait_for(session.wait_live(), 10)
            fetches_at_start = sum(k.fetches for k in run.kept)
            started = time.monotonic()
            while time.monotonic() - started < SESSION_S * SCALE:
                await session.send_audio_realtime(GenerativeContentBlob(AUDIO_INPUT_MIME, CHUNK))
                sent += 1
                await asyncio.sleep(0.04)
            await asyncio.wait_for(session.wait_live(), 10)
            async with asyncio.timeout(5):
                while run.emulator.stats.audio_frames < sent:
                    await asyncio.sleep(0.01)
            stats = session.stats
            assert session.failure is None
        refreshes = sum(k.fetches for k in run.kept) - fetches_at_start
        refresh_gaps = [g for g, fetched in run.gaps if fetched]
        other_gaps = [g for g, fetched in run.gaps if not fetched]
        print(f"\n{name}: {SESSION_S / 3600:g} h in {SESSION_S * SCALE:.1f} s; "
              f"connections {stats.connections}, refreshes {refreshes}, "
              f"refused {run.emulator.auth.refused}, dropped audio {stats.dropped_chunks}; "
              f"gap with a refresh p50 {_ms(refresh_gaps, 50)} max {_ms(refresh_gaps, 100)}; "
              f"without p50 {_ms(other_gaps, 50)} max {_ms(other_gaps, 100)}")
        assert run.emulator.auth.refused == 0  # every connection had a valid credential
        assert stats.dropped_chunks == 0  # nothing beyond the replay window
        assert run.emulator.stats.audio_frames == sent
        lifetime_h = 1.0 if name == "vertex" else 0.5
        assert refreshes >= SESSION_S / 3600 / lifetime_h - 1
        assert stats.connections >= 30  # the service ends each connection after 10 minutes
        assert max(g for g, _ in run.gaps) < POLICY.replay_audio_s


def _ms(values: list[float], q: int) -> str:
    if not values:
        return "-"
    if q == 100:
        return f"{max(values) * 1000:.1f} ms"
    return f"{statistics.median(values) * 1000:.1f} ms"
