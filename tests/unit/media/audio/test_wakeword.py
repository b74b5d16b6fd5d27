"""Wake words on real recordings: each phrase wakes its own model, nothing else wakes any."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from agent.media.audio import wakeword
from agent.media.audio.wakeword import (
    MicroWakeWordDetector,
    WakeDetection,
    WakeWordError,
    bundled_wake_words,
    wake_word_problem,
)
from tests.support import wake_audio as wa

BUNDLED = ("alexa", "hey_jarvis", "hey_mycroft", "okay_nabu")


def run(detector: MicroWakeWordDetector, signal: np.ndarray, chunk_ms: int = 40
        ) -> list[WakeDetection]:
    return [hit for c in wa.chunks(wa.pcm(signal), chunk_ms) if (hit := detector.detect(c))]


def in_room(phrase: np.ndarray, seed: int = 0) -> np.ndarray:
    """The phrase between a second of quiet on each side, with white noise 20 dB below it."""
    return wa.with_noise(np.concatenate([wa.silence(1), phrase, wa.silence(1)]), 20, seed)


def test_the_wheel_bundles_four_models() -> None:
    assert bundled_wake_words() == BUNDLED


@pytest.mark.parametrize("name", [r for rs in wa.RECORDINGS.values() for r in rs])
def test_every_recording_wakes_its_own_model_once(name: str) -> None:
    model = name.rsplit("_", 1)[0]
    detector = MicroWakeWordDetector([model])
    phrase = wa.recording(name)
    hits = run(detector, in_room(phrase))
    assert [h.name for h in hits] == [model]
    assert hits[0].probability > 0.85
    # Recognised at the end of the phrase (1 s of quiet before it), not before.
    assert 1.0 + len(phrase) / wa.RATE - 1.5 < hits[0].audio_s < 1.0 + len(phrase) / wa.RATE + 0.5


def test_several_wake_words_at_once_each_named() -> None:
    detector = MicroWakeWordDetector(["okay_nabu", "hey_jarvis"])
    signal = np.concatenate([in_room(wa.recording("okay_nabu_2")),
                             in_room(wa.recording("hey_jarvis_1"), seed=1),
                             in_room(wa.recording("okay_nabu_1"), seed=2),
                             in_room(wa.recording("hey_jarvis_2"), seed=3)])
    assert [h.name for h in run(detector, signal)] == [
        "okay_nabu", "hey_jarvis", "okay_nabu", "hey_jarvis"]
    assert detector.detections == 4
    assert detector.names == ("okay_nabu", "hey_jarvis")


def test_no_false_wake_on_speech_noise_silence_or_the_other_phrase() -> None:
    others = {
        "speech": wa.speech(),
        "speech in noise": wa.with_noise(wa.speech(), 10),
        "loud noise": wa.white_noise(10, 0.1),
        "quiet noise": wa.white_noise(10, 0.001, seed=1),
        "silence": wa.silence(10),
    }
    for model, names in wa.RECORDINGS.items():
        other_phrases = [n for m, ns in wa.RECORDINGS.items() if m != model for n in ns]
        detector = MicroWakeWordDetector([model])
        for name in other_phrases:
            assert run(detector, in_room(wa.recording(name))) == [], (model, name)
        for what, signal in others.items():
            assert run(detector, signal) == [], (model, what)
        assert names  # its own phrases are tested above
    quiet = MicroWakeWordDetector(["alexa", "hey_mycroft"])
    everything = [in_room(wa.recording(n)) for ns in wa.RECORDINGS.values() for n in ns]
    assert run(quiet, np.concatenate([*everything, *others.values()])) == []


def test_the_refractory_period_lets_one_phrase_wake_once() -> None:
    phrase = in_room(wa.recording("okay_nabu_2"))
    # Said twice with no gap: the second time falls inside a long refractory period.
    deaf = MicroWakeWordDetector(["okay_nabu"], refractory_s=10.0)
    assert len(run(deaf, np.concatenate([phrase, phrase]))) == 1
    awake = MicroWakeWordDetector(["okay_nabu"], refractory_s=1.0)
    assert len(run(awake, np.concatenate([phrase, phrase]))) == 2
    # With no refractory period the probability stays over the cutoff for a few windows.
    eager = MicroWakeWordDetector(["okay_nabu"], refractory_s=0.0)
    assert len(run(eager, phrase)) > 1


@pytest.mark.parametrize("chunk_ms", [10, 40, 200])
def test_chunk_size_does_not_change_what_is_heard(chunk_ms: int) -> None:
    detector = MicroWakeWordDetector(["hey_jarvis"])
    hits = run(detector, in_room(wa.recording("hey_jarvis_1")), chunk_ms)
    assert [h.name for h in hits] == ["hey_jarvis"]
    assert detector.audio_s == pytest.approx(2.0 + 2.0, abs=0.02)


def test_a_batch_hears_what_every_chunk_hears_at_the_chunk_that_fills_it() -> None:
    signal = in_room(wa.recording("okay_nabu_1"))
    chunks = list(wa.chunks(wa.pcm(signal), 40))
    single = MicroWakeWordDetector(["okay_nabu"], batch_ms=0)
    batched = MicroWakeWordDetector(["okay_nabu"], batch_ms=120)
    at_single = [(i, hit) for i, c in enumerate(chunks) if (hit := single.detect(c))]
    hits = [(i, hit) for i, c in enumerate(chunks) if (hit := batched.detect(c))]
    assert [i % 3 for i, _ in hits] == [2]  # only a chunk that completes a batch answers
    assert len(at_single) == 1 and 0 <= hits[0][0] - at_single[0][0] < 3
    assert hits[0][1] == at_single[0][1]  # the same window fired, at the same audio time
    assert batched.audio_s == single.audio_s


def test_reset_drops_a_partial_batch() -> None:
    detector = MicroWakeWordDetector(["okay_nabu"], batch_ms=120)
    noise = wa.pcm(wa.white_noise(1, 0.01))
    assert detector.detect(noise[:1280]) is None  # one chunk of three kept
    detector.reset()
    hits = run(detector, in_room(wa.recording("okay_nabu_2")))
    assert len(hits) == 1 and hits[0].audio_s < 4.0


def test_a_batch_longer_than_allowed_is_refused() -> None:
    with pytest.raises(WakeWordError, match=r"batch_ms must be 0\.\.500"):
        MicroWakeWordDetector(["okay_nabu"], batch_ms=501)


def test_reset_starts_the_stream_again() -> None:
    detector = MicroWakeWordDetector(["okay_nabu"])
    run(detector, wa.silence(1))
    detector.reset()
    assert detector.audio_s == 0
    hits = run(detector, in_room(wa.recording("okay_nabu_2")))
    assert len(hits) == 1 and hits[0].audio_s < 4.0


def custom_model(folder: Path, name: str = "computer") -> Path:
    """A "custom" model: a bundled one copied under another name, as training would write it."""
    bundled = wakeword._bundled_dir()
    assert bundled is not None
    shutil.copy(bundled / "okay_nabu.tflite", folder / f"{name}.tflite")
    doc = json.loads((bundled / "okay_nabu.json").read_text())
    doc.update(model=f"{name}.tflite", wake_word="Computer")
    (folder / f"{name}.json").write_text(json.dumps(doc))
    return folder / f"{name}.json"


def test_a_custom_model_from_its_json_or_its_tflite(tmp_path: Path) -> None:
    config = custom_model(tmp_path)
    for spec in (config, config.with_suffix(".tflite"), str(config)):
        detector = MicroWakeWordDetector([spec, "hey_jarvis"])
        hits = run(detector, in_room(wa.recording("okay_nabu_1")))
        assert [(h.name, h.phrase) for h in hits] == [("computer", "Computer")]


def test_bad_wake_words_are_refused_with_a_reason(tmp_path: Path) -> None:
    assert wake_word_problem("okay_nabu") is None
    problem = wake_word_problem("okay_nabo")
    assert problem is not None and "unknown wake word 'okay_nabo'" in problem
    assert "okay_nabu" in problem
    assert "cannot read" in str(wake_word_problem(tmp_path / "missing.json"))
    config = custom_model(tmp_path)
    good = json.loads(config.read_text())

    def problem_with(doc: object, raw: bytes | None = None) -> str:
        path = tmp_path / "bad.json"
        path.write_bytes(raw if raw is not None else json.dumps(doc).encode())
        found = wake_word_problem(path)
        assert found is not None
        with pytest.raises(WakeWordError):
            MicroWakeWordDetector([path])
        return found

    assert "not JSON" in problem_with(None, b"{oops")
    assert "not JSON" in problem_with(None, b"\xff\xfe")
    assert "not a microWakeWord" in problem_with([1, 2])
    assert "not a microWakeWord" in problem_with({**good, "model": "../../etc/passwd"})
    assert "probability_cutoff" in problem_with({**good, "micro": {**good["micro"],
                                                                    "probability_cutoff": 2}})
    assert "sliding_window_size" in problem_with({**good, "micro": {**good["micro"],
                                                                     "sliding_window_size": 0}})
    assert "more than" in problem_with(None, b" " * (64 * 1024 + 1))
    (tmp_path / "fake.tflite").write_bytes(b"\0" * 100)
    assert "not a TensorFlow Lite model" in problem_with({**good, "model": "fake.tflite"})
    assert "cannot read" in problem_with({**good, "model": "absent.tflite"})
    with pytest.raises(WakeWordError, match="at least one"):
        MicroWakeWordDetector([])
