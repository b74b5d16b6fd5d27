"""The typed, frozen configuration of the agent: one dataclass per section of the TOML file.

Every field has the default used when the key is absent, so ``AgentConfig()`` is the
configuration of an empty file. The file's keys are documented in ``agent.example.toml``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from agent.tools.spec import GpioConfig, ToolSpec

__all__ = [
    "BACKENDS",
    "CREDENTIAL_SOURCES",
    "FIREBASE_AUTH_MODES",
    "ActivityDetectionConfig",
    "AgentConfig",
    "AudioConfig",
    "AudioInput",
    "AudioOutput",
    "Backend",
    "CameraConfig",
    "CompressionConfig",
    "CredentialsConfig",
    "EchoCancellerConfig",
    "EchoPolicy",
    "GainControlConfig",
    "HealthConfig",
    "ListenConfig",
    "ListenMode",
    "LiveConfig",
    "LoggingConfig",
    "MemoryConfig",
    "ReconnectConfig",
    "SeedMode",
    "SpeechGateConfig",
    "diff_sections",
]

Backend = Literal["gemini", "vertex", "firebase-google", "firebase-vertex", "emulator"]
BACKENDS: tuple[Backend, ...] = (
    "gemini", "vertex", "firebase-google", "firebase-vertex", "emulator")

DEFAULT_MODEL = "gemini-live-2.5-flash-preview"

CredentialSource = Literal["key", "google", "token-server"]
CREDENTIAL_SOURCES: tuple[CredentialSource, ...] = ("key", "google", "token-server")
FirebaseAuthMode = Literal["anonymous", "custom-token"]
FIREBASE_AUTH_MODES: tuple[FirebaseAuthMode, ...] = ("anonymous", "custom-token")


# -- [live] ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CredentialsConfig:
    """Where the API key (or, for ``vertex``, the access token) comes from; tried in order:
    ``api_key_file``, ``$CREDENTIALS_DIRECTORY/<credential>`` (systemd ``LoadCredential=``),
    the environment variable ``env``. The key itself is never in the config file."""

    api_key_file: Path | None = None
    credential: str | None = "api-key"
    env: str | None = "GEMINI_API_KEY"
    source: CredentialSource = "key"
    """``key``: the key above, a key file read again when it changes; ``google``: Vertex access
    tokens from google-auth (``service_account_file``, else application default credentials);
    ``token-server``: an ephemeral token per connection from the owner's token server."""
    service_account_file: Path | None = None
    token_url: str | None = None
    device_id: str | None = None
    device_secret_file: Path | None = None
    token_ca_file: Path | None = None
    app_check_url: str | None = None
    app_check_command: tuple[str, ...] | None = None
    firebase_auth: FirebaseAuthMode | None = None
    custom_token_file: Path | None = None
    refresh_ahead_s: float = 300.0


@dataclass(frozen=True, slots=True)
class ActivityDetectionConfig:
    """The service's automatic voice activity detection (``[live.vad]``).

    ``enabled = false``: the agent marks turns itself (activityStart/activityEnd from the
    local speech gate or push-to-talk). ``barge_in``: the user's speech interrupts the model.
    Sensitivities and durations left as None use the service's defaults.
    """

    enabled: bool = True
    start_sensitivity: Literal["high", "low"] | None = None
    end_sensitivity: Literal["high", "low"] | None = None
    prefix_padding_ms: int | None = None
    silence_duration_ms: int | None = None
    barge_in: bool = True


@dataclass(frozen=True, slots=True)
class CompressionConfig:
    """Context window compression (``[live.compression]``): a sliding window that lets a
    session run past the service's 15-minute audio / 2-minute video limits."""

    enabled: bool = True
    trigger_tokens: int | None = None
    target_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class LiveConfig:
    """The Live API session (``[live]``)."""

    backend: Backend = "gemini"
    model: str = DEFAULT_MODEL
    endpoint: str | None = None
    project_id: str | None = None
    location: str = "us-central1"
    app_id: str | None = None
    voice: str | None = None
    language: str | None = None
    response_modalities: tuple[Literal["AUDIO", "TEXT"], ...] = ("AUDIO",)
    system_instruction: str | None = None
    temperature: float | None = None
    media_resolution: Literal["low", "medium", "high"] | None = None
    input_transcription: bool = True
    output_transcription: bool = True
    connect_timeout_s: float = 10.0
    vad: ActivityDetectionConfig = field(default_factory=ActivityDetectionConfig)
    compression: CompressionConfig = field(default_factory=CompressionConfig)
    credentials: CredentialsConfig = field(default_factory=CredentialsConfig)


# -- [reconnect] ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReconnectConfig:
    """How a lost session is brought back (``[reconnect]``).

    Backoff doubles from ``backoff_base_s`` up to ``backoff_cap_s`` (with jitter) and starts
    over once a connection has stayed up ``stable_after_s``; a quota or rate-limit refusal
    waits ``quota_backoff_s``. The last ``replay_audio_s`` of microphone audio is kept and
    replayed into the new connection, so nothing said during the gap is lost. (Pins go to
    their safe state after ``gpio.safe_after_disconnect_s`` without a session.)
    ``agent.build.live.reconnect_policy`` turns it into the client's ``ReconnectPolicy``.
    """

    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    quota_backoff_s: float = 60.0
    stable_after_s: float = 10.0
    replay_audio_s: float = 5.0


# -- [audio] --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AudioInput:
    """The microphone: a PyAudio device (name substring or index), a WAV file, a tone
    (``tone_hz``) or silence. ``device`` None: the mic profile's device, else the default."""

    kind: Literal["device", "wav", "tone", "silence"] = "device"
    device: str | int | None = None
    path: Path | None = None
    tone_hz: float = 440.0


@dataclass(frozen=True, slots=True)
class AudioOutput:
    """The speaker (``[audio.output]``): a PyAudio device (None: the default), a WAV file,
    or nothing. ``rate`` None: 24 kHz if the device takes it, else another it takes."""

    kind: Literal["device", "wav", "null"] = "device"
    device: str | int | None = None
    path: Path | None = None
    rate: int | None = None


@dataclass(frozen=True, slots=True)
class SpeechGateConfig:
    """The local voice-activity gate (``[audio.vad_gate]``): send speech only, with pre-roll."""

    enabled: bool = False
    margin_db: float = 10.0
    min_dbfs: float = -50.0
    hangover_ms: int = 400
    preroll_ms: int = 300


EchoPolicy = Literal["aec", "half_duplex", "none"]
ECHO_POLICIES: tuple[EchoPolicy, ...] = ("aec", "half_duplex", "none")
NOISE_SUPPRESSION = ("off", "low", "moderate", "high", "very_high")
MAX_AEC_DELAY_MS = 400  # agent.media.audio.aec.MAX_DELAY_MS: the reference ring's reach


@dataclass(frozen=True, slots=True)
class GainControlConfig:
    """WebRTC AGC2 on the echo-cancelled signal (``[audio.aec.gain_control]``); distinct from
    ``[audio] agc``, the capture's own gain toward a speech level before cancelling."""

    enabled: bool = False
    gain_db: float = 0.0
    max_gain_db: float = 30.0


@dataclass(frozen=True, slots=True)
class EchoCancellerConfig:
    """The in-process echo canceller (``[audio.aec]``), used when ``[audio] echo = "aec"``.

    ``delay_ms`` holds the speaker's reference back to meet its echo at the mic; None: the
    output latency the device reports. ``noise_suppression``: "off" or WebRTC NS's level.
    """

    delay_ms: int | None = None
    noise_suppression: str = "off"
    gain_control: GainControlConfig = field(default_factory=GainControlConfig)


@dataclass(frozen=True, slots=True)
class AudioConfig:
    """Capture and playback (``[audio]``).

    The capture format comes from the mic profile ``mic`` (a shipped profile's name or a
    profile file's path; None: 16 kHz mono S16, what a ``plughw`` device gives), with any of
    ``rate``, ``channels``, ``sample_format``, ``channel``, ``shift``, ``gain_db``, ``agc``
    and ``dc_block`` written in the file overriding it: see `capture_overrides`.
    """

    input: AudioInput = field(default_factory=AudioInput)
    mic: str | Path | None = None
    rate: int | None = None
    channels: int | None = None
    sample_format: Literal["int16", "int32"] | None = None
    channel: int | Literal["mix"] | None = None
    shift: int | None = None
    gain_db: float | None = None
    agc: bool | None = None
    dc_block: bool | None = None
    chunk_ms: int = 40
    echo: EchoPolicy | None = None
    """None: "aec" with a speaker device, "half_duplex" with a WAV or null output."""
    tail_ms: int = 300
    aec: EchoCancellerConfig = field(default_factory=EchoCancellerConfig)
    push_to_talk: bool = False
    vad_gate: SpeechGateConfig = field(default_factory=SpeechGateConfig)
    output: AudioOutput = field(default_factory=AudioOutput)

    @property
    def echo_policy(self) -> EchoPolicy:
        """The echo policy in force: ``echo`` as written, else by the kind of output."""
        if self.echo is not None:
            return self.echo
        return "aec" if self.output.kind == "device" else "half_duplex"

    def capture_overrides(self) -> dict[str, Any]:
        """The capture settings written in the file, as ``CaptureFormat`` keyword arguments
        over the mic profile's (``mic_capture_format(audio.mic, **audio.capture_overrides())``)."""
        names = ("rate", "channels", "sample_format", "channel", "shift", "gain_db", "agc",
                 "dc_block")
        values = {name: getattr(self, name) for name in names}
        return {name: value for name, value in values.items() if value is not None}


# -- [listen] -------------------------------------------------------------------------------

ListenMode = Literal["wake_word", "always", "vad_gate", "push_to_talk"]
LISTEN_MODES: tuple[ListenMode, ...] = ("wake_word", "always", "vad_gate", "push_to_talk")


@dataclass(frozen=True, slots=True)
class ListenConfig:
    """When the microphone's audio leaves the device (``[listen]``).

    ``always``: all of it. ``vad_gate``: speech only (``[audio.vad_gate]`` tells speech), with
    ``pre_roll_ms`` before each onset. ``push_to_talk``: while the button is held.
    ``wake_word``: nothing until one of ``wake_words`` (bundled names or model paths) is heard;
    then ``pre_roll_ms`` of audio before the detection and everything after it, until nobody
    has spoken for ``conversation_timeout_s`` after the model's last turn. ``chime`` sounds on
    the speaker at each wake. ``camera``: "conversation" sends frames only while a
    conversation is open (in ``wake_word`` mode), "always" whenever the session is live.
    ``wake_batch_ms``: audio the wake-word detector gathers before it runs (less CPU, a
    later detection).
    """

    mode: ListenMode = "always"
    wake_words: tuple[str | Path, ...] = ("okay_nabu",)
    refractory_s: float = 2.0
    wake_batch_ms: int = 120
    pre_roll_ms: int = 300
    conversation_timeout_s: float = 10.0
    chime: bool = False
    camera: Literal["conversation", "always"] = "conversation"


# -- [camera] -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CameraConfig:
    """The camera (``[camera]``): one JPEG every ``interval_s`` while the session is live."""

    enabled: bool = True
    source: str = "picamera2"  # a name in agent.media.camera.SOURCES
    camera_num: int = 0
    device: str = "/dev/video0"
    path: Path | None = None
    width: int = 768
    height: int = 576
    interval_s: float = 1.0
    quality: int = 80
    skip_unchanged: bool = False
    change_threshold: float = 3.0
    max_interval_s: float = 10.0


# -- [logging], [health] --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    """``[logging]``: ``format`` "auto" is JSON lines when stderr is not a terminal (journald)
    and coloured console lines on a terminal."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


@dataclass(frozen=True, slots=True)
class HealthConfig:
    """``[health]``: ``watchdog`` sends systemd's WATCHDOG=1 from the event loop (when the
    unit sets WatchdogSec=)."""

    watchdog: bool = True


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """``[metrics]``: Prometheus metrics served at ``listen`` (host, port), or written to a
    node_exporter ``textfile`` every ``textfile_interval_s``; off when neither is set."""

    listen: tuple[str, int] | None = None
    textfile: Path | None = None
    textfile_interval_s: float = 15.0

    @property
    def enabled(self) -> bool:
        return self.listen is not None or self.textfile is not None


SeedMode = Literal["initial_history", "context"]
SEED_MODES: tuple[SeedMode, ...] = ("initial_history", "context")


@dataclass(frozen=True, slots=True)
class MemoryConfig:
    """``[memory]``: what the conversation remembers across restarts (the newest resumption
    handle and the last ``max_turns`` turns, at most ``max_chars``), kept in ``file``
    (default ``$STATE_DIRECTORY/conversation.json``; nothing is kept without either).
    ``remember = false`` keeps nothing and deletes the file. A handle older than
    ``handle_valid_s`` is not tried (None: the backend's own validity). ``seed``: how a fresh
    session is told the turns, as declared initial history (``historyConfig``, which models
    such as gemini-3.1-flash-live require) or as plain context (a service without it)."""

    remember: bool = True
    file: Path | None = None
    max_turns: int = 12
    max_chars: int = 4_000
    handle_valid_s: float | None = None
    seed: SeedMode = "initial_history"


# -- [usage], [budget] ----------------------------------------------------------------------

PRICE_KEYS = ("input_text", "input_audio", "input_image", "input_video", "input_document",
              "output_text", "output_audio")
"""``[usage.prices]`` keys: a price per million tokens by direction and modality."""

BUDGET_STEPS = ("camera_off", "low_resolution", "wake_word_only")
"""What the agent gives up, in an order the config chooses, as the day's budget runs out."""

BudgetStep = Literal["camera_off", "low_resolution", "wake_word_only"]


@dataclass(frozen=True, slots=True)
class UsageConfig:
    """``[usage]``: tokens the service reports, summed per day and modality in ``file`` (None:
    ``usage.json`` in ``$STATE_DIRECTORY``, or kept in memory when systemd gives none), written
    every ``save_interval_s``. ``prices``: ``PRICE_KEYS`` -> ``currency`` per million tokens;
    a modality without a price of its own costs the direction's text price."""

    file: Path | None = None
    save_interval_s: float = 60.0
    currency: str = "USD"
    prices: tuple[tuple[str, float], ...] = ()

    def price(self, direction: str, modality: str) -> float:
        """The price per million tokens of ``direction`` ("input"/"output") and ``modality``."""
        table = dict(self.prices)
        own = table.get(f"{direction}_{modality.lower()}")
        return own if own is not None else table.get(f"{direction}_text", 0.0)


@dataclass(frozen=True, slots=True)
class BudgetConfig:
    """``[budget]``: a day's ``daily_tokens`` and/or ``daily_cost`` (in ``[usage]``'s
    currency). At each step's share of it the agent gives the step up (``steps``, ordered by
    share); at the whole of it the agent opens no conversation until the next day."""

    daily_tokens: int | None = None
    daily_cost: float | None = None
    steps: tuple[tuple[BudgetStep, float], ...] = ()

    @property
    def enabled(self) -> bool:
        return self.daily_tokens is not None or self.daily_cost is not None


# -- the whole file -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """The whole configuration. ``source`` is the file it was read from (None: defaults)."""

    live: LiveConfig = field(default_factory=LiveConfig)
    reconnect: ReconnectConfig = field(default_factory=ReconnectConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    listen: ListenConfig = field(default_factory=ListenConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    gpio: GpioConfig = field(default_factory=GpioConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    health: HealthConfig = field(default_factory=HealthConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    usage: UsageConfig = field(default_factory=UsageConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    source: Path | None = field(default=None, compare=False)

    @property
    def tools(self) -> tuple[ToolSpec, ...]:
        """The ``[[tools]]`` the model may call (parsed with the GPIO section)."""
        return self.gpio.tools


def diff_sections(old: AgentConfig, new: AgentConfig) -> set[str]:
    """The top-level sections whose settings differ (``"tools"`` apart from ``"gpio"``).

    The daemon restarts only the parts that read those sections on SIGHUP.
    """
    changed = {name for name in ("live", "reconnect", "audio", "listen", "camera", "logging",
                                 "health", "metrics", "memory", "usage", "budget")
               if getattr(old, name) != getattr(new, name)}
    if dataclasses.replace(old.gpio, tools=()) != dataclasses.replace(new.gpio, tools=()):
        changed.add("gpio")
    if old.gpio.tools != new.gpio.tools:
        changed.add("tools")
    return changed
