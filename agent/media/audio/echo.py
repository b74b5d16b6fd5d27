"""The echo policy: keep the model from hearing itself through the speaker.

With a speaker beside the mic the model hears itself and interrupts itself. Three policies,
chosen by ``echo`` in the config's ``[audio]``:

``aec`` (default with a speaker device)
    Cancel the echo in-process: :class:`~agent.media.audio.aec.EchoCancellingSource` runs
    WebRTC's AEC3 on the mic against the speaker's tap (what the playback thread wrote). The
    user can talk over the model. Built by ``agent.build.devices.with_echo_policy``, which
    imports the canceller only for this policy.

``half_duplex`` (default with a WAV or null output)
    Wrap the source in :class:`HalfDuplexGate`: while the sink plays, and for ``tail_ms``
    after, mic chunks are dropped. Simple and robust; the user cannot barge in by voice while
    the model speaks (push-to-talk or a wake button still can).

``none``
    Use the source as is: for headphones, a speakerphone with on-board echo cancelling
    (Anker PowerConf, Jabra Speak), or the OS echo canceller. To use the OS canceller:

    * PulseAudio: ``pactl load-module module-echo-cancel aec_method=webrtc
      source_name=aec_mic sink_name=aec_speaker`` (or put ``load-module ...`` in
      ``/etc/pulse/default.pa``), then ``pactl set-default-source aec_mic`` and
      ``pactl set-default-sink aec_speaker``.
    * PipeWire: drop a file in ``~/.config/pipewire/pipewire.conf.d/echo-cancel.conf`` with
      ``context.modules = [ { name = libpipewire-module-echo-cancel args = {
      library.name = aec/libspa-aec-webrtc  capture.props = { node.name = "aec_capture" }
      source.props = { node.name = "aec_mic" }  sink.props = { node.name = "aec_speaker" }
      playback.props = { node.name = "aec_playback" } } } ]`` and make ``aec_mic`` and
      ``aec_speaker`` the defaults (``wpctl set-default <id>``).
    * Point both devices at the sound server: ``device = "pulse"`` (the ALSA ``pulse`` PCM
      from libasound2-plugins; PipeWire provides it too through pipewire-pulse), capture
      format 16000 Hz / 1 ch / int16 with ``dc_block = true``. Or leave the defaults as they
      are and select by environment: ``PULSE_SOURCE=aec_mic PULSE_SINK=aec_speaker``.
    * Under systemd the service needs the user's sound server: ``Environment=
      PULSE_SERVER=unix:/run/user/<uid>/pulse/native XDG_RUNTIME_DIR=/run/user/<uid>``.

    Both streams must go through the canceller (it needs the speaker signal as reference), so
    do not open ``hw:`` devices directly with this policy.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

import structlog

log = structlog.get_logger(__name__)


@runtime_checkable
class ChunkSource(Protocol):
    """What the gate wraps: a startable source of 16 kHz mono S16LE chunks."""

    sample_rate: int
    chunk_ms: int

    def chunks(self) -> AsyncIterator[bytes]:
        """Chunks of ``chunk_ms`` until the source ends or is stopped."""
        ...

    async def start(self) -> None:
        """Open the device."""
        ...

    async def stop(self) -> None:
        """Close the device; ``chunks()`` ends."""
        ...


@runtime_checkable
class PlaybackState(Protocol):
    """What the gate reads of a speaker: whether it sounds now, and when it last did."""

    last_audio_at: float | None

    @property
    def is_playing(self) -> bool:
        """Audio is queued or still sounding."""
        ...


class HalfDuplexGate:
    """Mutes a source while a sink plays and for ``tail_ms`` after (the ``half_duplex`` policy).

    Muted chunks are dropped, not replaced by silence, and counted in ``muted_chunks``. The tail
    covers the speaker's own latency and room reverberation.
    """

    def __init__(self, source: ChunkSource, sink: PlaybackState, tail_ms: int = 300) -> None:
        self.source = source
        self.sink = sink
        self.tail_ms = tail_ms
        self.sample_rate = source.sample_rate
        self.chunk_ms = source.chunk_ms
        self.muted_chunks = 0
        self._muted = False

    @property
    def muted(self) -> bool:
        """Whether chunks are being dropped right now."""
        if self.sink.is_playing:
            return True
        last = self.sink.last_audio_at
        return last is not None and time.monotonic() - last < self.tail_ms / 1000.0

    async def chunks(self) -> AsyncIterator[bytes]:
        """The source's chunks, minus those captured while the speaker is (or just was) on."""
        async for chunk in self.source.chunks():
            muted = self.muted
            if muted != self._muted:
                self._muted = muted
                log.debug(
                    "audio.echo.muted" if muted else "audio.echo.unmuted",
                    muted_chunks=self.muted_chunks,
                )
            if muted:
                self.muted_chunks += 1
                continue
            yield chunk

    async def start(self) -> None:
        """Start the wrapped source."""
        await self.source.start()

    async def stop(self) -> None:
        """Stop the wrapped source."""
        await self.source.stop()

    async def __aenter__(self) -> HalfDuplexGate:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def apply_echo_policy(
    source: ChunkSource, sink: PlaybackState, policy: str = "half_duplex", tail_ms: int = 300
) -> ChunkSource:
    """The source the conversation should read for an echo ``policy`` (``half_duplex``/``none``)."""
    if policy == "none":
        return source
    if policy == "half_duplex":
        return HalfDuplexGate(source, sink, tail_ms)
    raise ValueError(f"echo policy must be 'half_duplex' or 'none' here ('aec' needs the "
                     f"speaker's tap: agent.build.devices.with_echo_policy), got {policy!r}")
