"""The wake models run with buffers made once hear exactly what the library's own loop hears."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pymicro_wakeword import MicroWakeWord, MicroWakeWordFeatures

from agent.media.audio import wakeword
from agent.media.audio.wake_model import Frontend, WakeModel
from tests.support import wake_audio as wa


def model_config(name: str) -> Path:
    bundled = wakeword._bundled_dir()
    assert bundled is not None
    return bundled / f"{name}.json"


def feed() -> bytes:
    """Both phrases of each model in noise, speech, silence and loud noise that clips."""
    parts = [wa.silence(0.5)]
    for name in ("okay_nabu_1", "hey_jarvis_2", "okay_nabu_2", "hey_jarvis_1"):
        parts += [wa.with_noise(wa.recording(name), 20, seed=len(parts)), wa.silence(0.7)]
    parts += [wa.speech()[: 3 * wa.RATE], wa.white_noise(1.0, 1.5, seed=9)]
    return wa.pcm(np.clip(np.concatenate(parts), -1, 1))


def library_run(name: str, pcm: bytes, pieces: int) -> tuple[list[list[float]], list[float]]:
    features, model = MicroWakeWordFeatures(), MicroWakeWord.from_config(model_config(name))
    windows, probabilities = [], []
    for chunk in wa.chunks(pcm, pieces):
        for window in features.process_streaming(chunk):
            windows.append(window.reshape(-1).tolist())
            probabilities.append(model.process_streaming_prob(window))
    model.close()
    return windows, probabilities


def our_run(model: WakeModel, frontend: Frontend, pcm: bytes, pieces: int
            ) -> tuple[list[list[float]], list[float]]:
    windows = [w for chunk in wa.chunks(pcm, pieces) for w in frontend.windows(chunk)]
    return windows, [model.probability(w) for w in windows]


@pytest.mark.parametrize("name", ["okay_nabu", "hey_jarvis", "alexa", "hey_mycroft"])
def test_probabilities_are_the_librarys_window_for_window(name: str) -> None:
    pcm = feed()
    their_windows, theirs = library_run(name, pcm, 40)
    model = WakeModel(model_config(name))
    our_windows, ours = our_run(model, Frontend(), pcm, 30)  # other chunk boundaries
    model.close()
    assert our_windows == their_windows
    assert len(ours) == len(theirs) > 900
    # The library's mean is exact (fractions); a float sum may differ in the last place.
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15)
    assert max(theirs) > model.cutoff or name in ("alexa", "hey_mycroft")


def test_a_reset_hears_as_a_new_model() -> None:
    pcm = feed()
    model, frontend = WakeModel(model_config("okay_nabu")), Frontend()
    our_run(model, frontend, pcm[: len(pcm) // 3 + 7], 40)  # an odd byte waits in the frontend
    model.reset()
    frontend.reset()
    _, after_reset = our_run(model, frontend, pcm, 40)
    fresh = WakeModel(model_config("okay_nabu"))
    _, from_new = our_run(fresh, Frontend(), pcm, 40)
    assert after_reset == from_new
    model.close()
    fresh.close()


def test_windows_wait_for_the_rest_of_their_samples() -> None:
    frontend = Frontend()
    pcm = wa.pcm(wa.white_noise(0.1, 0.1))  # ten windows' worth
    heard = [len(list(frontend.windows(pcm[at : at + 7]))) for at in range(0, len(pcm), 7)]
    # The frontend's first window needs 30 ms; every 10 ms after that makes one more.
    assert sum(heard) == 8
    assert all(n <= 1 for n in heard)
    assert len(next(iter(Frontend().windows(pcm)))) == WakeModel(model_config("alexa")).features


def test_a_model_for_other_features_is_refused_at_load(monkeypatch: pytest.MonkeyPatch) -> None:
    # A custom model made for another frontend would fail at its first window, mid-run; it is
    # refused when the detector is made, with the reason. (Every bundled model takes 40.)
    from agent.media.audio import wake_model

    monkeypatch.setattr(wake_model, "FEATURES", 39)
    with pytest.raises(wake_model.WakeModelError, match="40 features, the frontend makes 39"):
        WakeModel(model_config("okay_nabu"))
    with pytest.raises(wakeword.WakeWordError, match="features"):
        wakeword.MicroWakeWordDetector(["okay_nabu"])
