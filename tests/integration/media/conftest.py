"""Real PyAudio streams over virtual ALSA devices (see agent.media.audio.virtual_alsa)."""

from __future__ import annotations

from tests.support.virtual_alsa_fixtures import (  # noqa: F401  (fixtures)
    virtual_alsa,
    virtual_mic,
    virtual_speaker,
)
