"""Settings of one emulator instance."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from agent.emulator.scenario import Scenario


@dataclass(frozen=True, slots=True)
class EmulatorLimits:
    """What one emulator holds at most, whatever its clients send. The defaults suit tests
    and the command line; a device running an emulator in-process asks for less."""

    max_connections: int = 64  # open at once; more are refused with HTTP 503
    max_queued_frames: int = 4  # received frames buffered per connection before TCP pushes back
    max_pending_turns: int = 8  # user turns waiting for the fake model per connection
    max_turn_chars: int = 16_384  # text of one user turn the model keeps (tokens count it all)
    max_reply_s: float = 60.0  # longest spoken reply, in the service's seconds
    max_transcript_fragments: int = 64  # transcription messages per turn (fragments grow)
    max_outstanding_calls: int = 64  # function calls waiting for a response per connection
    max_armed_faults: int = 64  # faults armed on a connection and not yet fired
    send_timeout_s: float = 30.0  # a client that reads nothing for this long is dropped
    max_sessions: int = 256  # sessions kept; closed ones past the handle TTL go first
    max_handles_per_session: int = 8  # the newest handles of a session stay valid
    max_history: int = 32  # turns of conversation history a session keeps
    record_max_bytes: int = 256 * 1024 * 1024  # frames recorded in all (oldest connections go)
    record_max_connections: int = 1000  # connection recordings kept (oldest closed ones go)


ClientContentRule = Literal["any", "initial_history_only"]
CLIENT_CONTENT_RULES: tuple[ClientContentRule, ...] = ("any", "initial_history_only")


@dataclass(frozen=True, slots=True)
class TokenLifetimes:
    """Seconds each kind of token the REST side issues lives (wall clock, not scaled: a test
    of expiry chooses them)."""

    access: float = 3600.0
    id_token: float = 3600.0
    app_check: float = 3600.0
    ephemeral_default: float = 1800.0
    ephemeral_new_session_default: float = 60.0


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
    check_tokens: bool = False  # Bearer and ephemeral tokens must be issued here and valid
    require_app_check: bool = False  # X-Firebase-AppCheck present, issued here and valid
    require_firebase_auth: bool = False  # Authorization: Firebase <ID token issued here>
    rest: bool = False  # serve the token endpoints (agent.emulator.rest) on rest_url
    token_lifetimes: TokenLifetimes = TokenLifetimes()
    models: tuple[str, ...] | None = None  # accepted model ids (None: any well-formed name)
    scenario: Scenario | None = None
    # "initial_history_only" models gemini-3.1-flash-live: clientContent is accepted only as
    # the initial history the setup declares (historyConfig.initialHistoryInClientContent)
    client_content: ClientContentRule = "any"

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
    reply_delay_s: float = 0.0  # the model's thinking time before its reply begins
    reply_pitch_hz: float | None = None  # None: derived from the prebuilt voice name
    reply_amplitude: float = 0.3
    transcript_words_per_fragment: int = 3

    audio_tokens_per_s: float = 32.0
    text_chars_per_token: float = 4.0
    image_tokens: int = 258

    binary_frames: bool = True  # production sends JSON in binary frames
    send_session_id: bool = True
    max_message_bytes: int = 8 * 1024 * 1024  # a larger client frame is closed with 1009
    record: bool = True  # keep what was received and sent (within the limits' budget)
    limits: EmulatorLimits = EmulatorLimits()

    def scaled(self, seconds: float) -> float:
        """A service duration in wall-clock seconds."""
        return seconds * self.time_scale
