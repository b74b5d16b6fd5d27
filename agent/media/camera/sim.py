"""Simulated cameras that ship with the package: a test pattern and a folder of images.

The demo and the tests use them; they follow the same ``FrameSource`` contract as the real
cameras, including errors for a missing or unreadable folder.
"""

from __future__ import annotations

import itertools
import os
import stat
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from agent.media.camera.frames import CameraError, CameraUnavailable, RgbFrame
from agent.media.camera.image import fit_rgb
from agent.media.camera.jpeg import JpegFitter

# 5x7 glyphs for the clock text: one string per row, '#' is ink.
_GLYPHS: dict[str, tuple[str, ...]] = {
    "0": (" ### ", "#   #", "#  ##", "# # #", "##  #", "#   #", " ### "),
    "1": ("  #  ", " ##  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### "),
    "2": (" ### ", "#   #", "    #", "   # ", "  #  ", " #   ", "#####"),
    "3": ("#####", "   # ", "  #  ", "   # ", "    #", "#   #", " ### "),
    "4": ("   # ", "  ## ", " # # ", "#  # ", "#####", "   # ", "   # "),
    "5": ("#####", "#    ", "#### ", "    #", "    #", "#   #", " ### "),
    "6": ("  ## ", " #   ", "#    ", "#### ", "#   #", "#   #", " ### "),
    "7": ("#####", "    #", "   # ", "  #  ", " #   ", " #   ", " #   "),
    "8": (" ### ", "#   #", "#   #", " ### ", "#   #", "#   #", " ### "),
    "9": (" ### ", "#   #", "#   #", " ####", "    #", "   # ", " ##  "),
    ":": ("     ", "  #  ", "  #  ", "     ", "  #  ", "  #  ", "     "),
    ".": ("     ", "     ", "     ", "     ", "     ", " ##  ", " ##  "),
    " ": ("     ",) * 7,
}
_GLYPH_MASKS = {
    char: np.array([[c == "#" for c in row] for row in rows], dtype=bool)
    for char, rows in _GLYPHS.items()
}


def draw_text(image: RgbFrame, text: str, x: int, y: int, scale: int) -> None:
    """Draw ``text`` (digits, ':', '.', ' ') in white on a black box, in place."""
    advance = 6 * scale
    box_w = min(image.shape[1] - x, len(text) * advance + scale)
    box_h = min(image.shape[0] - y, 9 * scale)
    if box_w <= 0 or box_h <= 0:
        return
    image[y : y + box_h, x : x + box_w] = 0
    for index, char in enumerate(text):
        mask = _GLYPH_MASKS.get(char, _GLYPH_MASKS[" "])
        big = np.kron(mask, np.ones((scale, scale), dtype=bool))
        gx, gy = x + scale + index * advance, y + scale
        region = image[gy : gy + big.shape[0], gx : gx + big.shape[1]]
        region[big[: region.shape[0], : region.shape[1]]] = 255


class TestPatternSource:
    """Colour bars that scroll, a bouncing square and the wall-clock time drawn in.

    Every frame differs from the last (unless ``clock`` stands still), so the whole pipeline,
    change detection included, can be watched working without a camera. ``clock`` returns
    seconds since the epoch; tests pass a fixed one to get identical frames.
    """

    __test__ = False  # a product class, not a pytest test case

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._background: RgbFrame | None = None

    def open(self, width: int, height: int) -> None:
        x = np.arange(width, dtype=np.float32) / max(1, width)
        hue = (x * 6.0).astype(np.int32) % 6
        bars = np.array(
            [
                [230, 60, 60],
                [230, 200, 40],
                [60, 200, 60],
                [40, 190, 220],
                [60, 80, 230],
                [200, 60, 200],
            ],
            dtype=np.float32,
        )[hue]
        shade = 0.55 + 0.45 * (1.0 - np.arange(height, dtype=np.float32) / max(1, height))
        background = np.empty((height, width, 3), np.uint8)
        # Cast while multiplying, block by block: no full-size float copy of the frame.
        np.multiply(shade[:, None, None], bars[None, :, :], out=background, casting="unsafe")
        self._background = background

    def capture(self) -> RgbFrame:
        if self._background is None:
            raise CameraError("test pattern source is not open")
        now = self._clock()
        height, width = self._background.shape[:2]
        frame = np.roll(self._background, int(now * width / 8.0) % width, axis=1)
        side = max(2, min(width, height) // 6)
        span_x, span_y = max(1, width - side), max(1, height - side)
        sx = _bounce(now * 97.0, span_x)
        sy = _bounce(now * 61.0, span_y)
        frame[sy : sy + side, sx : sx + side] = 255
        local = time.localtime(now)
        text = time.strftime("%H:%M:%S", local) + f".{int(now * 1000) % 1000:03d}"
        scale = max(1, height // 60)
        draw_text(frame, text, x=scale * 2, y=scale * 2, scale=scale)
        return frame

    def close(self) -> None:
        self._background = None


def _bounce(position: float, span: int) -> int:
    phase = int(position) % (2 * span)
    return phase if phase < span else 2 * span - phase


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
MAX_FOLDER_ENTRIES = 10_000
"""Entries of an image folder looked at; the rest are ignored (a folder that large is not
a slide show, and listing it all would cost memory without bound)."""
MAX_IMAGE_BYTES = 32 * 1024 * 1024
"""The largest image file read (a 12 MP JPEG is about 5 MB)."""


class ImageFolderSource:
    """Cycle through the JPEG and PNG files of a folder (or one file), fitted to the size.

    JPEG is decoded with libjpeg-turbo at the smallest DCT scale that still covers the
    requested size; PNG needs Pillow, imported only when a PNG is met.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._files: list[Path] = []
        self._next = 0
        self._jpeg = JpegFitter(0, 0)

    def open(self, width: int, height: int) -> None:
        if self.path.is_file():
            files = [self.path]
        elif self.path.is_dir():
            entries = itertools.islice(self.path.iterdir(), MAX_FOLDER_ENTRIES)
            files = sorted(p for p in entries if p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            raise CameraUnavailable(f"image folder {self.path} does not exist")
        if not files:
            raise CameraUnavailable(f"no JPEG or PNG images in {self.path}")
        self._files = files
        self._jpeg = JpegFitter(width, height)

    def capture(self) -> RgbFrame:
        """The next image, fitted; a JPEG's frame is valid until the next capture."""
        if not self._files:
            raise CameraError("image folder source is not open")
        path = self._files[self._next % len(self._files)]
        self._next += 1  # move on first, so one bad file cannot stall the cycle
        data = _read_image(path)
        if path.suffix.lower() == ".png":
            return fit_rgb(_load_png(path, data), self._jpeg.width, self._jpeg.height)
        return self._jpeg.fit(data, what=f"image {path}")

    def close(self) -> None:
        self._files = []


def _read_image(path: Path) -> bytes:
    """An image file's bytes: a regular file (a FIFO would block, a device never end),
    opened without blocking, at most `MAX_IMAGE_BYTES`."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise CameraError(f"image {path} is not a regular file")
            # The file's own size, not the limit: read(n) sets aside n bytes before it reads.
            expected = min(info.st_size, MAX_IMAGE_BYTES)
            data = f.read(expected + 1)
            if len(data) > expected:  # it grew since: read on, up to the limit
                data += f.read(MAX_IMAGE_BYTES + 1 - len(data))
    except OSError as exc:
        raise CameraError(f"cannot read image {path}: {exc.strerror}") from exc
    if len(data) > MAX_IMAGE_BYTES:
        raise CameraError(f"image {path} is larger than {MAX_IMAGE_BYTES >> 20} MiB")
    return data


def _load_png(path: Path, data: bytes) -> RgbFrame:
    try:
        from io import BytesIO

        from PIL import Image, UnidentifiedImageError
    except ImportError as exc:
        raise CameraUnavailable(
            f"reading PNG images needs Pillow: pip install pillow (or use JPEG) for {path}"
        ) from exc
    try:
        with Image.open(BytesIO(data)) as image:
            return np.asarray(image.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as exc:
        raise CameraError(f"image {path} is not a valid PNG: {exc}") from exc
