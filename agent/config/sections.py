"""The parsers of the plain sections: [live], [reconnect], [audio], [camera], [logging] and
[health], each from one `Table` reader to its frozen dataclass.

Each read checks type and range and records a problem instead of stopping, so one pass finds
every problem; rules between keys of one section (a cap below its base, a key only used with
another's value) are checked here too.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit

from agent.config.files import FileProblem, read_head
from agent.config.media import (
    camera_source_keys,
    camera_sources,
    capture_problem,
    echo_canceller_problem,
    wake_word_problem,
)
from agent.config.model import (
    BACKENDS,
    CREDENTIAL_SOURCES,
    DEFAULT_MODEL,
    ECHO_POLICIES,
    FIREBASE_AUTH_MODES,
    LISTEN_MODES,
    MAX_AEC_DELAY_MS,
    NOISE_SUPPRESSION,
    SEED_MODES,
    ActivityDetectionConfig,
    AudioConfig,
    AudioInput,
    AudioOutput,
    CameraConfig,
    CompressionConfig,
    CredentialsConfig,
    EchoCancellerConfig,
    GainControlConfig,
    HealthConfig,
    ListenConfig,
    ListenMode,
    LiveConfig,
    LoggingConfig,
    MemoryConfig,
    MetricsConfig,
    ReconnectConfig,
    SpeechGateConfig,
)
from agent.config.problems import KeyPath
from agent.config.reader import Table, describe

__all__ = ["config_path", "read_audio", "read_camera", "read_health", "read_listen",
           "read_live", "read_logging", "read_memory", "read_metrics", "read_reconnect"]

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CREDENTIAL_NAME = re.compile(r"[A-Za-z0-9_.@-]+")
_DEVICE_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_LANGUAGE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})*")
_FIREBASE_BACKENDS = ("firebase-google", "firebase-vertex")


# -- [live] ---------------------------------------------------------------------------------


def read_live(s: Table, base_dir: Path) -> LiveConfig:
    d = LiveConfig()
    backend = s.text("backend", d.backend, BACKENDS)
    endpoint = s.text("endpoint", None)
    if endpoint is not None:
        problem = endpoint_problem(endpoint)
        if problem is not None:
            s.problem("endpoint", problem)
            endpoint = None
    project_id = s.text("project_id", None)
    if backend in ("vertex", *_FIREBASE_BACKENDS) and project_id is None and not s.has(
            "project_id"):
        s.problem("project_id", f'is required with backend = "{backend}"')
    app_id = s.text("app_id", None)
    if app_id is not None and backend not in _FIREBASE_BACKENDS:
        s.problem("app_id", "is only used with the firebase-google and firebase-vertex backends")
    language = s.text("language", None)
    if language is not None and not _LANGUAGE.fullmatch(language):
        s.problem("language", f'must be a BCP-47 language code such as "en-US", got "{language}"')
        language = None
    live = LiveConfig(
        backend=backend, model=s.text("model", DEFAULT_MODEL), endpoint=endpoint,
        project_id=project_id, location=s.text("location", d.location), app_id=app_id,
        voice=s.text("voice", None), language=language,
        response_modalities=_modalities(s),
        system_instruction=s.text("system_instruction", None),
        temperature=s.number("temperature", None, 0.0, 2.0),
        media_resolution=s.text("media_resolution", None, ("low", "medium", "high")),
        input_transcription=s.flag("input_transcription", True),
        output_transcription=s.flag("output_transcription", True),
        connect_timeout_s=s.number("connect_timeout_s", d.connect_timeout_s, 0, 120,
                                   lo_open=True),
        vad=_activity_detection(s.section("vad")),
        compression=_compression(s.section("compression")),
        credentials=_credentials(s.section("credentials"), base_dir, backend),
    )
    s.finish()
    return live


_ENDPOINT_HELP = "must be a WebSocket URL (ws://... or wss://...)"
# Query parameters that carry a credential: the key never belongs in the config file.
_CREDENTIAL_QUERY = re.compile(r"(?i)^(key|api_?key|access_?token|token|auth|sig|signature|"
                               r"password|secret)$")


def endpoint_problem(endpoint: str) -> str | None:
    """Why ``endpoint`` cannot be the Live API's base URL, or None. The client appends the
    service's path to it, so it is a scheme, a host, an optional port and an optional path;
    the message never repeats a credential written in it."""
    if not endpoint.isascii() or not endpoint.isprintable() or " " in endpoint:
        return f"{_ENDPOINT_HELP} (printable ASCII without spaces)"
    try:
        parts = urlsplit(endpoint)
    except ValueError as exc:  # a [ without its ] around an IPv6 address
        return f"{_ENDPOINT_HELP} ({exc})"
    if parts.scheme not in ("ws", "wss"):
        return f"{_ENDPOINT_HELP}, got {describe(endpoint)}"
    if parts.username is not None or parts.password is not None:
        return f"{_ENDPOINT_HELP} without user:password@ (credentials go in a key file)"
    if any(_CREDENTIAL_QUERY.match(name) for name, _ in parse_qsl(parts.query, True)):
        return (f"{_ENDPOINT_HELP} without a key in it (the key goes in a key file, never "
                "in the config)")
    if parts.query or parts.fragment:
        return f"{_ENDPOINT_HELP} without ?query or #fragment (the client appends its path)"
    if not parts.hostname:
        return f"{_ENDPOINT_HELP}, with a host, got {describe(endpoint)}"
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0 or (port is None and parts.netloc.endswith(":")):
        return f"{_ENDPOINT_HELP}, with a port from 1 to 65535, got {describe(endpoint)}"
    from websockets.uri import parse_uri  # the parser the client connects with

    try:
        parse_uri(endpoint.rstrip("/") + "/ws")
    except ValueError as exc:  # InvalidURI is a ValueError too
        return f"{_ENDPOINT_HELP} ({exc})"
    return None


def _modalities(s: Table) -> tuple[Any, ...]:
    raw = s.get("response_modalities", None)
    if raw is None:
        return ("AUDIO",)
    if (not isinstance(raw, list) or len(raw) != 1
            or raw[0] not in ("AUDIO", "TEXT")):
        s.problem("response_modalities",
                  'must be ["AUDIO"] or ["TEXT"] (a Live session answers in one modality)')
        return ("AUDIO",)
    return (raw[0],)


def _activity_detection(s: Table) -> ActivityDetectionConfig:
    sensitivity = ("high", "low")
    vad = ActivityDetectionConfig(
        enabled=s.flag("enabled", True),
        start_sensitivity=s.text("start_sensitivity", None, sensitivity),
        end_sensitivity=s.text("end_sensitivity", None, sensitivity),
        prefix_padding_ms=s.integer("prefix_padding_ms", None, 0, 10_000),
        silence_duration_ms=s.integer("silence_duration_ms", None, 0, 10_000),
        barge_in=s.flag("barge_in", True),
    )
    s.finish()
    return vad


def _compression(s: Table) -> CompressionConfig:
    trigger = s.integer("trigger_tokens", None, 1_000, 2_000_000)
    target = s.integer("target_tokens", None, 0, 2_000_000)
    if trigger is not None and target is not None and target >= trigger:
        s.problem("target_tokens", f"must be less than trigger_tokens ({trigger}), got {target}")
    compression = CompressionConfig(enabled=s.flag("enabled", True), trigger_tokens=trigger,
                                    target_tokens=target)
    s.finish()
    return compression


def _credentials(s: Table, base_dir: Path, backend: str) -> CredentialsConfig:
    d = CredentialsConfig()
    key_file = s.text("api_key_file", None)
    credential = s.text("credential", d.credential)
    if credential is not None and not _CREDENTIAL_NAME.fullmatch(credential):
        s.problem("credential", "must be a systemd credential name (letters, digits, "
                                f'"_", ".", "-", "@"), got "{credential}"')
    env = s.text("env", d.env)
    if env is not None and not _ENV_NAME.fullmatch(env):
        s.problem("env", f'must be an environment variable name, got "{env}"')
    source = s.text("source", d.source, CREDENTIAL_SOURCES)
    if source == "google" and backend != "vertex":
        s.problem("source", '"google" (google-auth access tokens) is for backend = "vertex"')
    if source == "token-server" and backend not in ("gemini", "emulator"):
        s.problem("source", '"token-server" (ephemeral tokens) is for backend = "gemini"')

    def path(key: str) -> Path | None:
        text = s.text(key, None)
        return None if text is None else _path(s, key, base_dir, text)

    service_account = path("service_account_file")
    if service_account is not None and source != "google":
        s.problem("service_account_file", 'is only read with source = "google"')
    token_url = _https_url(s, "token_url")
    device_id = s.text("device_id", None)
    if device_id is not None and not _DEVICE_ID.fullmatch(device_id):
        s.problem("device_id", "must be 1-64 letters, digits, \"_\", \".\" or \"-\", got "
                               f"{describe(device_id)}")
    device_secret = path("device_secret_file")
    token_ca = path("token_ca_file")
    if source == "token-server":
        for key, value in (("token_url", token_url), ("device_id", device_id),
                           ("device_secret_file", device_secret)):
            if value is None and not s.has(key):
                s.problem(key, 'is required with source = "token-server"')
    else:
        for key in ("token_url", "device_id", "device_secret_file", "token_ca_file"):
            if s.has(key):
                s.problem(key, 'is only read with source = "token-server"')
    app_check_url = _https_url(s, "app_check_url")
    command = _command(s, "app_check_command")
    if app_check_url is not None and command is not None:
        s.problem("app_check_command", "set app_check_url or app_check_command, not both")
    auth = s.text("firebase_auth", None, FIREBASE_AUTH_MODES)
    custom_token = path("custom_token_file")
    if auth == "custom-token" and custom_token is None and not s.has("custom_token_file"):
        s.problem("custom_token_file", 'is required with firebase_auth = "custom-token"')
    if custom_token is not None and auth != "custom-token":
        s.problem("custom_token_file", 'is only read with firebase_auth = "custom-token"')
    if backend not in _FIREBASE_BACKENDS:
        for key in ("app_check_url", "app_check_command", "firebase_auth"):
            if s.has(key):
                s.problem(key, "is only used with the firebase-google and firebase-vertex "
                               "backends")
    creds = CredentialsConfig(
        api_key_file=None if key_file is None else _path(s, "api_key_file", base_dir, key_file),
        credential=credential, env=env, source=source,
        service_account_file=service_account, token_url=token_url, device_id=device_id,
        device_secret_file=device_secret, token_ca_file=token_ca,
        app_check_url=app_check_url, app_check_command=command, firebase_auth=auth,
        custom_token_file=custom_token,
        refresh_ahead_s=s.number("refresh_ahead_s", d.refresh_ahead_s, 0, 3600))
    s.finish()
    return creds


def _https_url(s: Table, key: str) -> str | None:
    """An https URL (http only to this machine), without credentials in it."""
    text = s.text(key, None)
    if text is None:
        return None
    help_text = "must be an https:// URL (http:// only to 127.0.0.1 or localhost)"
    if not text.isascii() or not text.isprintable() or " " in text:
        s.problem(key, f"{help_text}, in printable ASCII without spaces")
        return None
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        s.problem(key, f"{help_text} ({exc})")
        return None
    local = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if not parts.hostname or not (parts.scheme == "https" or (parts.scheme == "http" and local)):
        s.problem(key, f"{help_text}, got {describe(text)}")
        return None
    if parts.username is not None or parts.password is not None or port == 0 or any(
            _CREDENTIAL_QUERY.match(name) for name, _ in parse_qsl(parts.query, True)):
        s.problem(key, f"{help_text}, with no credential in it (those go in files)")
        return None
    return str(text)


def _command(s: Table, key: str) -> tuple[str, ...] | None:
    """A command as an array of strings: the program (an absolute path) and its arguments."""
    raw = s.get(key, None)
    if raw is None:
        return None
    if (not isinstance(raw, list) or not raw or len(raw) > 64
            or not all(isinstance(a, str) and a and "\0" not in a for a in raw)):
        s.problem(key, 'must be an array of 1-64 non-empty strings: ["/path/to/program", '
                       '"argument", ...]')
        return None
    if not raw[0].startswith("/"):
        s.problem(key, f"the program must be an absolute path, got {describe(raw[0])}")
        return None
    return tuple(raw)


# -- [reconnect] ----------------------------------------------------------------------------


def read_reconnect(s: Table) -> ReconnectConfig:
    d = ReconnectConfig()
    base = s.number("backoff_base_s", d.backoff_base_s, 0, 60, lo_open=True)
    cap = s.number("backoff_cap_s", d.backoff_cap_s, 0, 3600, lo_open=True)
    if cap < base:
        s.problem("backoff_cap_s", f"must be at least backoff_base_s ({base:g}), got {cap:g}")
    reconnect = ReconnectConfig(
        backoff_base_s=base, backoff_cap_s=cap,
        quota_backoff_s=s.number("quota_backoff_s", d.quota_backoff_s, 0, 3600),
        stable_after_s=s.number("stable_after_s", d.stable_after_s, 0, 3600),
        replay_audio_s=s.number("replay_audio_s", d.replay_audio_s, 0, 30),
    )
    s.finish()
    return reconnect


# -- [audio] --------------------------------------------------------------------------------


_FORMATS = {"int16": "int16", "int32": "int32", "S16_LE": "int16", "S32_LE": "int32"}


def read_audio(s: Table, base_dir: Path) -> AudioConfig:
    d = AudioConfig()
    channels = s.integer("channels", None, 1, 32)
    fmt = s.text("sample_format", None, tuple(_FORMATS))
    channel = s.get("channel", None)
    if channel is not None and channel != "mix" and not (
            isinstance(channel, int) and not isinstance(channel, bool) and 0 <= channel < 32):
        s.problem("channel", f'must be "mix" or a channel number from 0, got {describe(channel)}')
        channel = None
    mic = s.text("mic", None)
    audio = AudioConfig(
        input=_audio_input(s, base_dir),
        mic=None if mic is None else _mic(s, mic, base_dir),
        rate=s.integer("rate", None, 8000, 384_000), channels=channels,
        sample_format=None if fmt is None else cast(Any, _FORMATS[fmt]),
        channel=channel, shift=s.integer("shift", None, 0, 23),
        gain_db=s.number("gain_db", None, -40, 60), agc=s.flag("agc", None),
        dc_block=s.flag("dc_block", None),
        chunk_ms=s.integer("chunk_ms", d.chunk_ms, 10, 200),
        echo=s.text("echo", None, ECHO_POLICIES),
        tail_ms=s.integer("tail_ms", d.tail_ms, 0, 5000),
        aec=_echo_canceller(s.section("aec")),
        push_to_talk=s.flag("push_to_talk", False),
        vad_gate=_speech_gate(s.section("vad_gate")),
        output=_audio_output(s.section("output"), base_dir),
    )
    s.finish()
    _check_capture(audio, s)
    if audio.echo == "aec" and audio.output.kind != "device":
        s.problem("echo", f'"aec" needs a speaker device to take its reference from, and a '
                          f'{audio.output.kind} output makes no echo: use "half_duplex" or "none"')
    elif audio.echo_policy == "aec" and (problem := echo_canceller_problem()) is not None:
        s.problem("echo", problem)
    if audio.echo_policy == "aec" and audio.chunk_ms % 10:
        s.problem("chunk_ms", 'must be a multiple of 10 with echo = "aec" (the canceller works '
                              f"in 10 ms frames), got {audio.chunk_ms}")
    return audio


def _mic(s: Table, name: str, base_dir: Path) -> str | Path | None:
    """A profile name stays a name; anything that looks like a path is resolved."""
    if name.endswith(".toml") or "/" in name:
        return _path(s, "mic", base_dir, name)
    if "\0" in name:
        s.problem("mic", "must not contain a NUL character")
        return None
    return name


def _check_capture(audio: AudioConfig, s: Table) -> None:
    """The mic profile exists and the overrides make a format the converter accepts."""
    if audio.mic is None and s.has("mic"):
        return  # reported already
    problem = capture_problem(audio.mic, audio.capture_overrides())
    if problem is not None:
        s.problem(*problem)


def _audio_input(s: Table, base_dir: Path) -> AudioInput:
    raw = s.get("input", None)
    if raw is None:
        return AudioInput()
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
        return AudioInput(kind="device", device=raw)
    if not isinstance(raw, str) or not raw.strip():
        s.problem("input", 'must be a device name or index, "wav:PATH", "tone", "tone:HZ" or '
                           f'"silence", got {describe(raw)}')
        return AudioInput()
    if raw == "silence":
        return AudioInput(kind="silence", device=None)
    if raw == "tone" or raw.startswith("tone:"):
        return AudioInput(kind="tone", device=None, tone_hz=_tone(s, raw))
    if raw.startswith("wav:"):
        path = _path(s, "input", base_dir, raw[4:])
        if path is None:
            return AudioInput()
        problem = _wav_problem(path)
        if problem:
            s.problem("input", problem)
        return AudioInput(kind="wav", device=None, path=path)
    return AudioInput(kind="device", device=None if raw == "default" else raw)


def _tone(s: Table, raw: str) -> float:
    if raw == "tone":
        return 440.0
    try:
        hz = float(raw[5:])
    except ValueError:
        hz = -1.0
    if not 20.0 <= hz <= 7900.0:
        s.problem("input", f'a tone must be "tone" or "tone:HZ" with 20 <= HZ <= 7900, '
                           f'got "{raw}"')
        return 440.0
    return hz


def _wav_problem(path: Path) -> str | None:
    try:
        head = read_head(path, 12, what="WAV file")
    except FileProblem as exc:
        return f"{exc}: {path}"
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return f"not a WAV file: {path}"
    return None


def _audio_output(s: Table, base_dir: Path) -> AudioOutput:
    rate = s.integer("rate", None, 8000, 192_000)
    raw = s.get("device", None)
    out = AudioOutput(rate=rate)
    if raw is None or raw == "default":
        pass
    elif isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
        out = AudioOutput(kind="device", device=raw, rate=rate)
    elif not isinstance(raw, str) or not raw.strip():
        s.problem("device", 'must be a device name or index, "wav:PATH" or "null", '
                            f"got {describe(raw)}")
    elif raw == "null":
        out = AudioOutput(kind="null", device=None, rate=rate)
    elif raw.startswith("wav:"):
        path = _path(s, "device", base_dir, raw[4:])
        if path is None:
            pass
        elif not path.parent.is_dir():
            s.problem("device", f"the folder for {path} does not exist")
        elif not os.access(path.parent, os.W_OK):
            s.problem("device", f"cannot write to {path.parent}")
        out = AudioOutput(kind="wav", device=None, path=path, rate=rate)
    else:
        out = AudioOutput(kind="device", device=raw, rate=rate)
    s.finish()
    return out


def _echo_canceller(s: Table) -> EchoCancellerConfig:
    d = EchoCancellerConfig()
    g = s.section("gain_control")
    dg = GainControlConfig()
    gain = GainControlConfig(
        enabled=g.flag("enabled", dg.enabled),
        gain_db=g.number("gain_db", dg.gain_db, 0, 30),
        max_gain_db=g.number("max_gain_db", dg.max_gain_db, 0, 50),
    )
    g.finish()
    aec = EchoCancellerConfig(
        delay_ms=s.integer("delay_ms", None, 0, MAX_AEC_DELAY_MS),
        noise_suppression=s.text("noise_suppression", d.noise_suppression, NOISE_SUPPRESSION),
        gain_control=gain,
    )
    s.finish()
    return aec


def _speech_gate(s: Table) -> SpeechGateConfig:
    d = SpeechGateConfig()
    gate = SpeechGateConfig(
        enabled=s.flag("enabled", d.enabled),
        margin_db=s.number("margin_db", d.margin_db, 0, 60),
        min_dbfs=s.number("min_dbfs", d.min_dbfs, -100, 0),
        hangover_ms=s.integer("hangover_ms", d.hangover_ms, 0, 5000),
        preroll_ms=s.integer("preroll_ms", d.preroll_ms, 0, 2000),
    )
    s.finish()
    return gate


# -- [listen] -------------------------------------------------------------------------------

MAX_WAKE_WORDS = 8
"""Wake words listened for at once (each is a network run on every 30 ms of audio)."""


def read_listen(s: Table, audio: Table, audio_config: AudioConfig, base_dir: Path
                ) -> ListenConfig:
    """``[listen]``; ``audio`` is the ``[audio]`` table, whose older keys (``push_to_talk``,
    ``vad_gate.enabled``, ``vad_gate.preroll_ms``) choose the mode when ``mode`` is not
    written."""
    d = ListenConfig()
    mode: ListenMode = s.text("mode", _legacy_mode(audio_config), LISTEN_MODES)
    if s.has("mode"):
        if audio.has("push_to_talk") and audio_config.push_to_talk:
            audio.problem("push_to_talk", 'listen.mode chooses how the device listens: '
                          'remove this key (listen.mode = "push_to_talk" does what it did)')
        if audio.section("vad_gate").has("enabled") and audio_config.vad_gate.enabled:
            audio.problem(("vad_gate", "enabled"), 'listen.mode chooses how the device '
                          'listens: remove this key (listen.mode = "vad_gate" does what it did)')
    pre_roll_default = (audio_config.vad_gate.preroll_ms
                        if audio.section("vad_gate").has("preroll_ms") else d.pre_roll_ms)
    listen = ListenConfig(
        mode=mode, wake_words=_wake_words(s, base_dir),
        refractory_s=s.number("refractory_s", d.refractory_s, 0, 60),
        wake_batch_ms=s.integer("wake_batch_ms", d.wake_batch_ms, 0, 500),  # wakeword.MAX_BATCH_MS
        pre_roll_ms=s.integer("pre_roll_ms", pre_roll_default, 0, 2000),
        conversation_timeout_s=s.number("conversation_timeout_s", d.conversation_timeout_s,
                                        1, 3600),
        chime=s.flag("chime", d.chime),
        camera=s.text("camera", d.camera, ("conversation", "always")),
    )
    s.finish()
    return listen


def _legacy_mode(audio: AudioConfig) -> ListenMode:
    if audio.push_to_talk:
        return "push_to_talk"
    return "vad_gate" if audio.vad_gate.enabled else "always"


def _wake_words(s: Table, base_dir: Path) -> tuple[str | Path, ...]:
    raw = s.get("wake_words", None)
    if raw is None:
        return ListenConfig().wake_words
    if (not isinstance(raw, list) or not raw or len(raw) > MAX_WAKE_WORDS
            or not all(isinstance(w, str) and w.strip() for w in raw)):
        s.invalid("wake_words", f"must be a list of 1 to {MAX_WAKE_WORDS} wake words (a bundled "
                  'model\'s name such as "okay_nabu", or the path of a model\'s .json)', raw)
        return ListenConfig().wake_words
    words: list[str | Path] = []
    for i, text in enumerate(raw):
        word: str | Path | None = text
        if "/" in text or text.endswith((".json", ".tflite")):
            word = _path(s, ("wake_words", i), base_dir, text)
        if word is None:
            continue
        problem = wake_word_problem(word)
        if problem is not None:
            s.problem(("wake_words", i), problem)
            continue
        words.append(word)
    return tuple(words) or ListenConfig().wake_words


# -- [camera] -------------------------------------------------------------------------------

# [camera] keys that set the stream for every source, even where a source reads them too.
_CAMERA_STREAM_KEYS = frozenset({"quality"})


def read_camera(s: Table, base_dir: Path) -> CameraConfig:
    d = CameraConfig()
    source = s.text("source", d.source, camera_sources())
    for key, users in camera_source_keys().items():
        if key not in _CAMERA_STREAM_KEYS and s.has(key) and source not in users:
            s.problem(key, "is only used with source = " + " or ".join(map(describe, users)))
    path_text = s.text("path", None)
    path = None if path_text is None else _path(s, "path", base_dir, path_text)
    if source == "image-folder":
        if path is None and not s.has("path"):
            s.problem("path", 'is required with source = "image-folder" (a folder of JPEG/PNG '
                              "files, or one file)")
        elif path is not None and not path.exists():
            s.problem("path", f"no such file or folder: {path}")
    width = _even_side(s, "width", d.width)
    height = _even_side(s, "height", d.height)
    interval = s.number("interval_s", d.interval_s, 0.05, 3600)
    max_interval = s.number("max_interval_s", d.max_interval_s, 0.05, 86_400)
    if max_interval < interval:
        s.problem("max_interval_s", f"must be at least interval_s ({interval:g}), "
                                    f"got {max_interval:g}")
    camera = CameraConfig(
        enabled=s.flag("enabled", d.enabled), source=source,
        camera_num=s.integer("camera_num", d.camera_num, 0, 15),
        device=s.text("device", d.device), path=path, width=width, height=height,
        interval_s=interval, quality=s.integer("quality", d.quality, 1, 100),
        skip_unchanged=s.flag("skip_unchanged", d.skip_unchanged),
        change_threshold=s.number("change_threshold", d.change_threshold, 0, 255),
        max_interval_s=max_interval,
    )
    s.finish()
    return camera


def _even_side(s: Table, key: str, default: int) -> int:
    value: int = s.integer(key, default, 16, 4096)
    if value % 2:
        s.problem(key, f"must be an even number of pixels, got {value}")
        return default
    return value


# -- [logging], [health] --------------------------------------------------------------------


def read_logging(s: Table) -> LoggingConfig:
    d = LoggingConfig()
    config = LoggingConfig(
        level=s.text("level", d.level, ("debug", "info", "warning", "error")),
        format=s.text("format", d.format, ("auto", "json", "console")),
    )
    s.finish()
    return config


def read_health(s: Table) -> HealthConfig:
    health = HealthConfig(watchdog=s.flag("watchdog", True))
    s.finish()
    return health


def read_metrics(s: Table, base_dir: Path) -> MetricsConfig:
    listen = _listen_address(s)
    written = s.text("textfile", None)
    textfile = None if written is None else _path(s, "textfile", base_dir, written)
    interval = s.number("textfile_interval_s", 15.0, 1.0, 3600.0)
    if listen is not None and textfile is not None:
        s.problem("textfile", "give listen or textfile, not both: node_exporter's textfile "
                              "collector is the way when nothing may listen on the device")
    s.finish()
    return MetricsConfig(listen=listen, textfile=textfile, textfile_interval_s=interval)


def read_memory(s: Table, base_dir: Path) -> MemoryConfig:
    d = MemoryConfig()
    written = s.text("file", None)
    valid = s.number("handle_valid_s", None, 60.0, 7 * 86_400.0)
    config = MemoryConfig(
        remember=s.flag("remember", d.remember),
        file=None if written is None else _path(s, "file", base_dir, written),
        max_turns=s.integer("max_turns", d.max_turns, 1, 64),
        max_chars=s.integer("max_chars", d.max_chars, 100, 16_384),
        handle_valid_s=valid,
        seed=s.text("seed", d.seed, SEED_MODES),
    )
    s.finish()
    return config


def _listen_address(s: Table) -> tuple[str, int] | None:
    """``"HOST:PORT"`` (``"[::1]:9464"`` for IPv6) as (host, port)."""
    text = s.text("listen", None)
    if text is None:
        return None
    host, sep, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535 or any(
            c.isspace() or c in "/[]@" for c in host):
        s.invalid("listen", 'must be "HOST:PORT" with a port 1..65535, like "127.0.0.1:9464"',
                  text)
        return None
    return host, int(port)


def _path(s: Table, key: str | KeyPath, base_dir: Path, text: str) -> Path | None:
    """A path from the config: ``~`` expanded, relative ones taken from the file's folder;
    None (a problem at ``key``) when it cannot name a file."""
    if "\0" in text:
        s.problem(key, "a path must not contain a NUL character")
        return None
    try:
        path = Path(text).expanduser()
    except RuntimeError:  # ~name of a user that does not exist, or no home folder
        user = text[1:].split("/", 1)[0]
        s.problem(key, f'"~{user}" names no user with a home folder: write the path in full')
        return None
    return path if path.is_absolute() else base_dir / path


config_path = _path  # for the sections read in modules of their own
