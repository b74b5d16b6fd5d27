"""Tell speech from background by loudness alone: cheap enough for every chunk on a Pi Zero."""

from __future__ import annotations

from collections import deque

import numpy as np

from agent.media.audio.filters import level_dbfs


class EnergySpeechDetector:
    """Energy-based speech detector with a tracked noise floor and a hangover.

    A chunk is loud when its level is at least ``margin_db`` above the noise floor and above
    ``min_dbfs``. After ``onset_chunks`` loud chunks in a row the detector reports speech, and
    keeps reporting it for ``hangover_ms`` after the last loud chunk, so pauses between words do
    not cut the stream. The noise floor is the quietest chunk of the last ``floor_window_s``
    (minimum statistics): speech always has dips between syllables, so the floor stays low
    while someone talks, but a steady fan or fridge becomes the floor within the window.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        *,
        margin_db: float = 10.0,
        min_dbfs: float = -50.0,
        hangover_ms: int = 400,
        onset_chunks: int = 2,
        floor_window_s: float = 3.0,
    ) -> None:
        self.sample_rate = sample_rate
        self.margin_db = margin_db
        self.min_dbfs = min_dbfs
        self.hangover_ms = hangover_ms
        self.onset_chunks = onset_chunks
        self.floor_window_s = floor_window_s
        self.level_dbfs = -200.0
        self._levels: deque[float] = deque()
        self._loud_run = 0
        self._hang_left_s = 0.0
        self._speaking = False

    @property
    def noise_floor_dbfs(self) -> float:
        """The current noise floor estimate (-100 before any audio)."""
        return min(self._levels, default=-100.0)

    def is_speech(self, chunk: bytes) -> bool:
        """Classify one S16LE mono chunk (stateful: call for every chunk in order)."""
        samples = np.frombuffer(chunk, "<i2", len(chunk) // 2).astype(np.float32) / 32768.0
        seconds = len(samples) / self.sample_rate
        level = self.level_dbfs = level_dbfs(samples)
        floor = min(self.noise_floor_dbfs, level) if self._levels else level
        loud = level >= self.min_dbfs and level >= floor + self.margin_db
        self._remember(max(level, -100.0), seconds)
        self._loud_run = self._loud_run + 1 if loud else 0
        if self._loud_run >= self.onset_chunks or (self._speaking and loud):
            self._speaking = True
            self._hang_left_s = self.hangover_ms / 1000.0
        elif self._speaking:
            self._speaking = self._hang_left_s > 1e-6
            self._hang_left_s -= seconds
        return self._speaking

    def _remember(self, level: float, seconds: float) -> None:
        self._levels.append(level)
        keep = max(1, round(self.floor_window_s / seconds)) if seconds else 1
        while len(self._levels) > keep:
            self._levels.popleft()

    def reset(self) -> None:
        """Forget the noise floor and any speech in progress."""
        self._levels.clear()
        self._loud_run = 0
        self._hang_left_s = 0.0
        self._speaking = False
