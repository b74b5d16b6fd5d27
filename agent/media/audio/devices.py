"""PyAudio/PortAudio access: one lock around library setup, device lookup and listing.

PortAudio counts ``Pa_Initialize``/``Pa_Terminate`` calls and only rescans devices when the
count returns to zero, so a capture thread that recreates its :class:`PortAudio` after a device
error sees a replugged USB mic only if nothing else in the process holds PortAudio open. For
hot-plug, name an ALSA PCM that resolves the card by name at open time instead (see
``hardware/mics/usb-generic.toml``); such a PCM stays in the device list while unplugged and
opens again once the card is back.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import structlog

log = structlog.get_logger(__name__)

PROBE_RATES = (16000, 44100, 48000)
PROBE_FORMATS = ("int16", "int32")

# Pa_Initialize/Pa_Terminate are not safe to call from two threads at once.
_PA_LOCK = threading.Lock()
_quiet_handlers: list[Any] = []  # keeps the ctypes callbacks alive


class AudioDeviceError(Exception):
    """A capture or playback device cannot be found, opened or used."""


@dataclass(frozen=True)
class AudioDeviceInfo:
    """One PortAudio device as ``edge-agent devices`` shows it.

    ``input_formats``/``output_formats`` list the accepted ``"<rate>/<format>"`` pairs out of
    16000/44100/48000 x int16/int32, probed with ``probe_channels_in``/``_out`` channels.
    """

    index: int
    name: str
    host_api: str
    max_input_channels: int
    max_output_channels: int
    default_rate: int
    input_formats: tuple[str, ...] = ()
    output_formats: tuple[str, ...] = ()
    probe_channels_in: int = 0
    probe_channels_out: int = 0


def silence_native_audio_errors() -> None:
    """Route ALSA's and JACK's stderr chatter to nowhere (idempotent).

    PortAudio opens every ALSA PCM while enumerating, and alsa-lib prints an error for each
    one that fails; libjack prints when no JACK server runs. Neither is actionable, and both
    bypass our logs. Real failures still reach us as PortAudio errors.
    """
    if _quiet_handlers:
        return
    alsa_handler_type = ctypes.CFUNCTYPE(
        None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p
    )
    jack_handler_type = ctypes.CFUNCTYPE(None, ctypes.c_char_p)
    alsa_quiet = alsa_handler_type(lambda *_: None)
    jack_quiet = jack_handler_type(lambda _msg: None)
    _quiet_handlers.extend([alsa_quiet, jack_quiet])
    for name, setters, handler in (
        ("asound", ("snd_lib_error_set_handler",), alsa_quiet),
        ("jack", ("jack_set_error_function", "jack_set_info_function"), jack_quiet),
    ):
        path = ctypes.util.find_library(name)
        if not path:
            continue
        try:
            lib = ctypes.CDLL(path)
            for setter in setters:
                getattr(lib, setter)(handler)
        except (OSError, AttributeError):
            continue


def _pyaudio() -> Any:
    try:
        import pyaudio  # imported late: the simulated devices need no PortAudio
    except ImportError as exc:  # pragma: no cover - pyaudio is a dependency
        raise AudioDeviceError(
            "PyAudio is not installed (pip install pyaudio; needs portaudio19-dev)"
        ) from exc
    return pyaudio


def release_alsa_config() -> None:
    """Free alsa-lib's global configuration and unload the plugin modules no open PCM uses.

    PortAudio's device scan opens every PCM the ALSA configuration defines, which loads each
    plugin's module: with libasound2-plugins installed that includes the a52 encoder and with
    it FFmpeg's libavcodec, some 11 MB of RSS kept for the life of the process. alsa-lib
    reference-counts its plugin modules and re-reads the configuration on the next open, so
    releasing them after the scan costs nothing later (PortAudio does the same when it
    terminates). Also makes alsa-lib read a configuration written after it first started.
    """
    path = ctypes.util.find_library("asound")
    if path:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(path).snd_config_update_free_global()


class PortAudio:
    """One PyAudio instance, created and terminated under a process-wide lock."""

    def __init__(self) -> None:
        silence_native_audio_errors()
        self.module = _pyaudio()
        with _PA_LOCK:
            self.pa: Any = self.module.PyAudio()
            release_alsa_config()

    def close(self) -> None:
        """Terminate this instance (PortAudio itself stays up while others hold it)."""
        with _PA_LOCK:
            if self.pa is not None:
                self.pa.terminate()
                self.pa = None

    def format_code(self, sample_format: str) -> int:
        """PortAudio's constant for ``int16``/``int32``."""
        codes = {"int16": self.module.paInt16, "int32": self.module.paInt32}
        return int(codes[sample_format])

    def devices(self) -> list[dict[str, Any]]:
        """Raw PortAudio device dictionaries, in index order."""
        return [self.pa.get_device_info_by_index(i) for i in range(self.pa.get_device_count())]

    def find(self, device: str | int | None, *, want_input: bool) -> dict[str, Any]:
        """The device matching an index, a name (exact, then case-insensitive substring) or
        ``None`` for the default; it must have channels in the wanted direction."""
        key = "maxInputChannels" if want_input else "maxOutputChannels"
        direction = "input" if want_input else "output"
        devices = self.devices()
        usable = [d for d in devices if int(d[key]) > 0]
        if device is None:
            try:
                info: dict[str, Any] = (
                    self.pa.get_default_input_device_info()
                    if want_input
                    else self.pa.get_default_output_device_info()
                )
                return info
            except OSError as exc:
                raise AudioDeviceError(f"no default {direction} device") from exc
        if isinstance(device, int):
            for d in usable:
                if int(d["index"]) == device:
                    return d
            raise AudioDeviceError(
                f"no {direction} device with index {device}; have {_names(usable)}"
            )
        exact = [d for d in usable if d["name"] == device]
        if exact:
            return exact[0]
        matches = [d for d in usable if device.lower() in str(d["name"]).lower()]
        if not matches:
            raise AudioDeviceError(
                f"no {direction} device named like {device!r}; have {_names(usable)}"
            )
        if len(matches) > 1:
            log.info(
                "audio.device.ambiguous",
                wanted=device,
                picked=matches[0]["name"],
                candidates=[m["name"] for m in matches],
            )
        return matches[0]

    def supports(
        self, index: int, rate: int, channels: int, sample_format: str, *, want_input: bool
    ) -> bool:
        """Whether the device accepts this format (PortAudio opens the device to check)."""
        kwargs: dict[str, Any] = {"rate": rate}
        code = self.format_code(sample_format)
        if want_input:
            kwargs |= {"input_device": index, "input_channels": channels, "input_format": code}
        else:
            kwargs |= {"output_device": index, "output_channels": channels, "output_format": code}
        try:
            return bool(self.pa.is_format_supported(**kwargs))
        except ValueError:
            return False


def _names(devices: list[dict[str, Any]]) -> list[str]:
    return [str(d["name"]) for d in devices]


@contextmanager
def portaudio() -> Iterator[PortAudio]:
    """A :class:`PortAudio` for the duration of a ``with`` block."""
    host = PortAudio()
    try:
        yield host
    finally:
        host.close()


def list_audio_devices(probe: bool = True) -> list[AudioDeviceInfo]:
    """Every PortAudio device with its channels, default rate and (if ``probe``) accepted formats.

    Probing opens each device briefly, so a device busy in another process shows no formats.
    """
    with portaudio() as host:
        host_apis = {
            i: str(host.pa.get_host_api_info_by_index(i)["name"])
            for i in range(host.pa.get_host_api_count())
        }
        result = []
        for d in host.devices():
            index = int(d["index"])
            max_in, max_out = int(d["maxInputChannels"]), int(d["maxOutputChannels"])
            ch_in, ch_out = min(max_in, 2), min(max_out, 2)
            inputs: list[str] = []
            outputs: list[str] = []
            if probe:
                for rate in PROBE_RATES:
                    for fmt in PROBE_FORMATS:
                        if ch_in and host.supports(index, rate, ch_in, fmt, want_input=True):
                            inputs.append(f"{rate}/{fmt}")
                        if ch_out and host.supports(index, rate, ch_out, fmt, want_input=False):
                            outputs.append(f"{rate}/{fmt}")
            result.append(
                AudioDeviceInfo(
                    index=index,
                    name=str(d["name"]),
                    host_api=host_apis.get(int(d["hostApi"]), "?"),
                    max_input_channels=max_in,
                    max_output_channels=max_out,
                    default_rate=int(d["defaultSampleRate"]),
                    input_formats=tuple(inputs),
                    output_formats=tuple(outputs),
                    probe_channels_in=ch_in,
                    probe_channels_out=ch_out,
                )
            )
        return result
