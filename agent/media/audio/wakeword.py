"""Wake words: microWakeWord models listening to the 16 kHz chunks the capture makes.

`MicroWakeWordDetector` runs one feature frontend (10 ms windows) and feeds every window to each
model it holds, so several wake words cost one frontend and one small network each. A model is
one of the models bundled with ``pymicro-wakeword`` (``okay_nabu``, ``hey_jarvis``, ``alexa``,
``hey_mycroft``), by name, or a custom one: the path of its ``.json`` (or of the ``.tflite`` with
the ``.json`` beside it), as microWakeWord's training writes them. A model fires when the mean of
its last probabilities passes the cutoff its ``.json`` gives; it stays above the cutoff for a
while after the phrase, so after a detection the detector is deaf for ``refractory_s`` of audio.
Time is counted in audio, not on the clock, so a file gives the same detections as a room.

The detector hears in batches of ``batch_ms`` (120 ms by default): chunks are kept until a
batch is full and then run through the frontend and the models at once. Each call costs a fixed
overhead and runs on cold caches after the capture's 40 ms sleep, so three chunks per call take
about a third less CPU than one; a detection comes at most ``batch_ms`` minus one chunk later,
and the pre-roll still reaches back from it.

``pymicro_wakeword`` (with its TFLite runtime, 5 MB) is imported only when a detector is made: an
agent that does not listen for a wake word never loads it.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import structlog

if TYPE_CHECKING:
    from agent.media.audio.wake_model import Frontend, WakeModel

__all__ = [
    "MAX_MODEL_BYTES",
    "MAX_MODEL_CONFIG_BYTES",
    "MicroWakeWordDetector",
    "WakeDetection",
    "WakeWordDetector",
    "WakeWordError",
    "bundled_wake_words",
    "wake_chime",
    "wake_word_problem",
]

log = structlog.get_logger(__name__)

SAMPLE_RATE = 16000
WINDOW_S = 0.01
"""The frontend makes one feature window per 10 ms of audio ..."""
WINDOW_LAG_S = 0.02
"""... each of 30 ms: window n ends 20 ms after n steps."""

MAX_MODEL_CONFIG_BYTES = 64 * 1024
"""The most of a custom model's ``.json`` that is read."""

DEFAULT_BATCH_MS = 120
MAX_BATCH_MS = 500
"""The longest batch: a detection must not come much later than the phrase's end."""

MAX_MODEL_BYTES = 16 * 1024 * 1024
"""The largest custom ``.tflite`` accepted (the bundled ones are 50-80 KB)."""


class WakeWordError(ValueError):
    """A wake word that cannot be loaded: an unknown name, a bad or missing model file."""


@dataclass(frozen=True, slots=True)
class WakeDetection:
    """One wake word heard: its model's ``name``, the ``phrase`` it stands for, the mean
    ``probability`` that passed the cutoff, and ``audio_s``, how far into the audio fed since
    the detector was made (or reset) the phrase was recognised."""

    name: str
    phrase: str
    probability: float
    audio_s: float


class WakeWordDetector(Protocol):
    """Listens to 16 kHz mono S16LE chunks for a wake word."""

    @property
    def names(self) -> tuple[str, ...]:
        """The wake words listened for."""
        ...

    def detect(self, chunk: bytes) -> WakeDetection | None:
        """Feed one chunk (any length, in order); the detection it completes, if any."""
        ...

    def reset(self) -> None:
        """Forget the audio heard so far (for a stream that starts again)."""
        ...


# -- finding models -------------------------------------------------------------------------


def _bundled_dir() -> Path | None:
    """The wheel's models folder, found without importing the package (nor its runtime)."""
    spec = importlib.util.find_spec("pymicro_wakeword")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def bundled_wake_words() -> tuple[str, ...]:
    """The names of the models that come with ``pymicro-wakeword``, sorted."""
    folder = _bundled_dir()
    if folder is None or not folder.is_dir():
        return ()
    models = (p.stem for p in folder.glob("*.json") if p.with_suffix(".tflite").is_file())
    return tuple(sorted(models))


def _looks_like_path(spec: str | Path) -> bool:
    return isinstance(spec, Path) or "/" in spec or spec.endswith((".json", ".tflite"))


@dataclass(frozen=True, slots=True)
class _ModelFiles:
    config: Path
    tflite: Path
    phrase: str


def _model_files(spec: str | Path) -> _ModelFiles:
    """The checked files of a wake word given by name or path; raises `WakeWordError`."""
    if not _looks_like_path(spec):
        name = str(spec)
        bundled = bundled_wake_words()
        if name not in bundled:
            raise WakeWordError(
                f"unknown wake word {name!r}: one of {', '.join(bundled) or '(none installed)'}"
                " or the path of a microWakeWord model's .json")
        folder = _bundled_dir()
        assert folder is not None
        spec = folder / f"{name}.json"
    path = Path(spec)
    config = path.with_suffix(".json") if path.suffix == ".tflite" else path
    raw = _read_bounded(config, MAX_MODEL_CONFIG_BYTES, "model description")
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WakeWordError(f"{config}: not JSON ({exc})") from exc
    micro = doc.get("micro") if isinstance(doc, dict) else None
    model = doc.get("model") if isinstance(doc, dict) else None
    if not isinstance(micro, dict) or not isinstance(model, str) or "/" in model:
        raise WakeWordError(f"{config}: not a microWakeWord model description (needs "
                            '"model": "NAME.tflite" and a "micro" table)')
    cutoff = micro.get("probability_cutoff")
    window = micro.get("sliding_window_size")
    if isinstance(cutoff, bool) or not isinstance(cutoff, int | float) or not 0 < cutoff < 1:
        raise WakeWordError(f"{config}: micro.probability_cutoff must be between 0 and 1")
    if isinstance(window, bool) or not isinstance(window, int) or not 1 <= window <= 1000:
        raise WakeWordError(f"{config}: micro.sliding_window_size must be from 1 to 1000")
    tflite = config.parent / model
    head = _read_bounded(tflite, MAX_MODEL_BYTES, "model", head=8)
    if head[4:8] != b"TFL3":  # the flatbuffer identifier of every TFLite model
        raise WakeWordError(f"{tflite}: not a TensorFlow Lite model")
    phrase = doc.get("wake_word")
    return _ModelFiles(config, tflite, phrase if isinstance(phrase, str) else config.stem)


def _read_bounded(path: Path, limit: int, what: str, head: int | None = None) -> bytes:
    try:
        with path.open("rb") as f:
            size = f.seek(0, 2)
            if size > limit:
                raise WakeWordError(f"{path}: {what} is {size} bytes, more than {limit}")
            f.seek(0)
            return f.read(head if head is not None else limit)
    except OSError as exc:
        raise WakeWordError(f"cannot read the {what} {path}: {exc.strerror or exc}") from exc


def wake_word_problem(spec: str | Path) -> str | None:
    """Why the wake word ``spec`` (a bundled name or a model's path) cannot be loaded, or None."""
    try:
        _model_files(spec)
    except WakeWordError as exc:
        return str(exc)
    return None


def wake_chime(rate: int = 24000) -> bytes:
    """A short rising two-note chime (S16LE mono at ``rate``): the device heard its name."""
    import numpy as np

    notes = []
    for freq in (660.0, 990.0):
        t = np.arange(int(0.09 * rate)) / rate
        envelope = np.sin(np.pi * t / t[-1]) ** 2  # no click at either end
        notes.append(0.25 * envelope * np.sin(2 * np.pi * freq * t))
    return (np.concatenate(notes) * 32767).astype("<i2").tobytes()


# -- the detector ---------------------------------------------------------------------------


class _Listener:
    """One model and what it needs to say what it heard."""

    def __init__(self, files: _ModelFiles) -> None:
        from agent.media.audio.wake_model import WakeModel, WakeModelError

        try:
            self.model: WakeModel = WakeModel(files.config)
        except WakeModelError as exc:
            raise WakeWordError(str(exc)) from exc
        self.name = files.config.stem
        self.phrase = files.phrase
        self.cutoff = self.model.cutoff


class MicroWakeWordDetector:
    """Listens for one or more microWakeWord models in one stream of 16 kHz chunks.

    ``wake_words``: bundled names or model paths (see the module). ``refractory_s``: audio after
    a detection in which no wake word fires again. ``batch_ms``: audio kept before it is
    heard in one go (see the module). Counters: ``detections``, ``audio_s`` (audio fed since
    the last reset).
    """

    def __init__(self, wake_words: tuple[str | Path, ...] | list[str | Path],
                 *, refractory_s: float = 2.0, batch_ms: int = DEFAULT_BATCH_MS) -> None:
        if not wake_words:
            raise WakeWordError("at least one wake word is needed")
        if not 0 <= batch_ms <= MAX_BATCH_MS:
            raise WakeWordError(f"batch_ms must be 0..{MAX_BATCH_MS}, got {batch_ms}")
        files = [_model_files(spec) for spec in wake_words]
        from agent.media.audio.wake_model import Frontend

        self._listeners = [_Listener(f) for f in files]
        self._frontend: Frontend = Frontend()
        self.refractory_s = refractory_s
        self.detections = 0
        self._windows = 0
        self._bytes = 0
        self._deaf_until = 0
        self._batch_bytes = batch_ms * SAMPLE_RATE * 2 // 1000
        self._batch = bytearray()
        log.info("audio.wake_word.loaded", wake_words=list(self.names), batch_ms=batch_ms)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(listener.name for listener in self._listeners)

    @property
    def audio_s(self) -> float:
        return self._bytes / (2 * SAMPLE_RATE)

    def detect(self, chunk: bytes) -> WakeDetection | None:
        self._bytes += len(chunk)
        if self._batch or len(chunk) < self._batch_bytes:
            self._batch += chunk
            if len(self._batch) < self._batch_bytes:
                return None
            chunk, self._batch = bytes(self._batch), bytearray()
        found: WakeDetection | None = None
        for window in self._frontend.windows(chunk):
            self._windows += 1
            heard = self._feed(window)
            if heard is not None and found is None:
                found = heard
        return found

    def _feed(self, window: list[float]) -> WakeDetection | None:
        best: WakeDetection | None = None
        for listener in self._listeners:
            # Every model sees every window, deaf or not: each keeps its own stride and history.
            probability = listener.model.probability(window)
            if probability <= listener.cutoff:
                continue
            if self._windows < self._deaf_until:
                continue
            if best is None or probability > best.probability:
                best = WakeDetection(listener.name, listener.phrase, round(probability, 3),
                                     round(self._windows * WINDOW_S + WINDOW_LAG_S, 2))
        if best is not None:
            self.detections += 1
            self._deaf_until = self._windows + round(self.refractory_s / WINDOW_S)
            log.info("audio.wake_word.detected", wake_word=best.name,
                     probability=best.probability, audio_s=best.audio_s)
        return best

    def reset(self) -> None:
        self._batch.clear()
        self._frontend.reset()
        for listener in self._listeners:
            listener.model.reset()
        self._windows = 0
        self._bytes = 0
        self._deaf_until = 0

    def close(self) -> None:
        """Free the models' interpreters."""
        for listener in self._listeners:
            listener.model.close()
