"""Settings of one emulator instance."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from agent.emulator.scenario import Scenario


@dataclass(frozen=True, slots=True)
class EmulatorConfig:
    """Everything that shapes how the emulator behaves. Durations are in seconds of the
    service's clock; ``time_scale`` multiplies every wall-clock duration (lifetimes, goAway
    lead, handle validity, reply pacing, fault delays), so ``0.01`` runs 100x faster.
    Speech detection works in audio time and is not scaled."""

    host: str = "127.0.0.1"
    port: int = 0
    tls: bool = False
    cert_dir: Path | None = None
    api_key: str | None = None  # None: any non-empty credential is accepted
    models: tuple[str, ...] | None = None  # accepted model ids (None: any well-formed name)
    scenario: Scenario | None = None

    connection_lifetime_s: float | None = 600.0  # None: connections never expire
    go_away_before_s: float = 60.0
    session_token_budget: int = 128_000  # context window; the session ends when it fills
    handle_ttl_s: float = 7200.0  # resumption handles live this long after the session ends
    time_scale: float = 1.0
    setup_timeout_s: float = 30.0
    concurrent_resume_grace_s: float = 1.0  # wait this long for a resumed session's old socket

    speech_threshold_dbfs: float = -40.0
    speech_start_ms: int = 30
    silence_duration_ms: int = 600

    reply_chunk_ms: int = 120  # audio per modelTurn message
    reply_ms_per_char: float = 55.0  # spoken reply length per character of its text
    reply_min_s: float = 0.4
    reply_pitch_hz: float | None = None  # None: derived from the prebuilt voice name
    reply_amplitude: float = 0.3
    transcript_words_per_fragment: int = 3

    audio_tokens_per_s: float = 32.0
    text_chars_per_token: float = 4.0
    image_tokens: int = 258

    binary_frames: bool = True  # production sends JSON in binary frames
    send_session_id: bool = True
    max_message_bytes: int = 8 * 1024 * 1024
    record: bool = True

    def scaled(self, seconds: float) -> float:
        """A service duration in wall-clock seconds."""
        return seconds * self.time_scale
