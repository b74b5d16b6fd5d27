"""Real PyAudio streams over virtual ALSA devices (see agent.media.virtual_alsa)."""

from __future__ import annotations

from agent.media.virtual_alsa_pytest import (  # noqa: F401  (fixtures)
    virtual_alsa,
    virtual_mic,
    virtual_speaker,
)
