"""The echo canceller run offline: recorded far end and microphone in, cancelled chunks out.

The unit tests and the canceller's benchmark drive it the same way: the speaker's chunk is
tapped just before the microphone's chunk of the same moment is processed.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from agent.media.audio.aec import EchoCancellingSource, EchoSettings
from agent.media.audio.reference import ReferenceTap

RATE = 16000
CHUNK = 640  # 40 ms


class Chunks:
    """A source of given chunks (the canceller only reads its rate and chunk length here)."""

    sample_rate = RATE
    chunk_ms = 40
    dropped = 0


def cancel(
    far: npt.NDArray[np.float64], mic: npt.NDArray[np.float64], settings: EchoSettings
) -> tuple[npt.NDArray[np.int16], EchoCancellingSource]:
    """Run the canceller chunk by chunk over ``far`` (what the speaker played) and ``mic``
    (what the microphone heard), both at 16 kHz in int16 units; the output and the canceller."""
    tap = ReferenceTap(RATE)
    aec = EchoCancellingSource(Chunks(), tap, settings)
    far16 = np.clip(far, -32768, 32767).astype(np.int16)
    mic16 = np.clip(mic, -32768, 32767).astype(np.int16)
    out = []
    for i in range(0, far16.size - CHUNK + 1, CHUNK):
        tap.push(far16[i : i + CHUNK].tobytes())
        out.append(np.frombuffer(aec.process(mic16[i : i + CHUNK].tobytes()), np.int16))
    return np.concatenate(out), aec
