"""pytest fixtures for real PyAudio streams over the virtual ALSA devices.

Import the fixtures into a ``conftest.py``::

    from tests.support.virtual_alsa_fixtures import (  # noqa: F401  (fixtures)
        virtual_alsa, virtual_mic, virtual_speaker,
    )

``virtual_alsa`` (session) installs the devices of :mod:`agent.media.audio.virtual_alsa` once per
process; ``virtual_mic`` is a fresh :class:`~agent.media.audio.virtual_alsa.VirtualMic` feeding
``vmic``/``vmic_i2s``; ``virtual_speaker(bytes_per_second)`` returns a fresh real-time drain of
``vspk``. Both are closed after the test. Tests are skipped, with the reason, where PortAudio or
ALSA's file plugin is missing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from agent.media.audio.virtual_alsa import VirtualAlsa, VirtualAlsaError, VirtualMic, VirtualSpeaker


@pytest.fixture(scope="session")
def virtual_alsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VirtualAlsa]:
    """The virtual ALSA devices, installed before the first PyAudio() of the session."""
    alsa = VirtualAlsa(tmp_path_factory.mktemp("alsa"))
    try:
        alsa.install()
    except (VirtualAlsaError, ImportError, OSError) as exc:
        alsa.uninstall()
        pytest.skip(f"virtual ALSA devices unavailable: {exc}")
    yield alsa
    alsa.uninstall()


@pytest.fixture
def virtual_mic(virtual_alsa: VirtualAlsa) -> Iterator[VirtualMic]:
    """A fresh feed for ``vmic``; call ``play(data, block_bytes=..., bytes_per_second=...)``."""
    mic = virtual_alsa.mic()
    yield mic
    mic.close()


@pytest.fixture
def virtual_speaker(virtual_alsa: VirtualAlsa) -> Iterator[Callable[[int], VirtualSpeaker]]:
    """Factory: ``virtual_speaker(bytes_per_second)`` drains ``vspk`` in real time."""
    made: list[VirtualSpeaker] = []

    def make(bytes_per_second: int) -> VirtualSpeaker:
        speaker = virtual_alsa.speaker(bytes_per_second)
        made.append(speaker)
        return speaker

    yield make
    for speaker in made:
        speaker.close()
