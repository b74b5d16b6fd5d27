"""Simulated sources, image fitting, the JPEG encoder, thumbnails and the factory."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import simplejpeg
from PIL import Image

from agent.media.camera import (
    CameraError,
    CameraUnavailable,
    JpegFrame,
    YuvFrame,
    make_frame_source,
)
from agent.media.camera.change import ChangeDetector, luma_thumbnail
from agent.media.camera.frames import frame_size
from agent.media.camera.image import RgbFitter, fit_rgb, luma_of_rgb, yuyv_to_i420
from agent.media.camera.jpeg import JpegEncoder, JpegFitter, decode_jpeg
from agent.media.camera.picamera2 import Picamera2Source
from agent.media.camera.sim import ImageFolderSource, TestPatternSource, draw_text
from agent.media.camera.v4l2 import V4L2Source


def rgb_to_i420(rgb: np.ndarray) -> YuvFrame:
    """Full-range BT.601 conversion (what JPEG uses), chroma averaged over 2x2 blocks."""
    f = rgb.astype(np.float64)
    y = 0.299 * f[..., 0] + 0.587 * f[..., 1] + 0.114 * f[..., 2]
    u = -0.168736 * f[..., 0] - 0.331264 * f[..., 1] + 0.5 * f[..., 2] + 128
    v = 0.5 * f[..., 0] - 0.418688 * f[..., 1] - 0.081312 * f[..., 2] + 128
    h, w = y.shape

    def half(p: np.ndarray) -> np.ndarray:
        return np.asarray(p.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3)))

    def u8(p: np.ndarray) -> np.ndarray:
        return np.asarray(np.clip(np.rint(p), 0, 255), dtype=np.uint8)

    return YuvFrame(y=u8(y), u=u8(half(u)), v=u8(half(v)))


def photo_like(width: int, height: int, seed: int = 1) -> np.ndarray:
    """Smooth gradients with a little texture: compresses like a camera picture."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack(
        (
            128 + 100 * np.sin(xx / 90),
            128 + 90 * np.cos(yy / 70),
            128 + 60 * np.sin((xx + yy) / 150),
        ),
        axis=-1,
    )
    noise = rng.normal(0, 6, size=base.shape)
    return np.asarray(np.clip(base + noise, 0, 255), dtype=np.uint8)


# --- test pattern -------------------------------------------------------------------------


def test_test_pattern_moves_with_the_clock_and_stands_still_without_it() -> None:
    now = [1_700_000_000.0]
    source = TestPatternSource(clock=lambda: now[0])
    source.open(320, 240)
    first = source.capture()
    again = source.capture()
    now[0] += 0.5
    later = source.capture()
    assert first.shape == (240, 320, 3) and first.dtype == np.uint8
    assert np.array_equal(first, again)
    assert not np.array_equal(first, later)


def test_test_pattern_draws_the_time() -> None:
    now = 1_700_000_123.456
    source = TestPatternSource(clock=lambda: now)
    source.open(640, 480)
    frame = source.capture()
    scale = 480 // 60
    text = time.strftime("%H:%M:%S", time.localtime(now)) + ".456"
    expected = np.full_like(frame, 77)
    draw_text(expected, text, x=2 * scale, y=2 * scale, scale=scale)
    box = np.any(expected != 77, axis=-1)  # the text box: black with white glyphs
    assert box.sum() > 0
    assert np.array_equal(frame[box], expected[box])
    other = expected.copy()
    draw_text(other, text.replace(".456", ".457"), x=2 * scale, y=2 * scale, scale=scale)
    assert not np.array_equal(frame[box], other[box])  # the digits are really compared


def test_test_pattern_capture_before_open_is_a_camera_error() -> None:
    with pytest.raises(CameraError, match="not open"):
        TestPatternSource().capture()


# --- image folder -------------------------------------------------------------------------


def write_images(folder: Path) -> None:
    red = np.zeros((720, 1280, 3), dtype=np.uint8)
    red[..., 0] = 220
    (folder / "a.jpg").write_bytes(simplejpeg.encode_jpeg(red, 90, "RGB", "420"))
    blue = np.zeros((200, 300, 3), dtype=np.uint8)
    blue[..., 2] = 200
    Image.fromarray(blue).save(folder / "b.png")
    (folder / "notes.txt").write_text("not an image")


def test_image_folder_cycles_in_name_order_fitted_to_size(tmp_path: Path) -> None:
    write_images(tmp_path)
    source = ImageFolderSource(tmp_path)
    source.open(768, 576)
    frames = [source.capture().copy() for _ in range(3)]  # a frame lasts until the next
    assert all(f.shape == (576, 768, 3) for f in frames)
    red, blue, red_again = (f.reshape(-1, 3).mean(axis=0) for f in frames)
    assert red[0] > 200 and red[2] < 20
    assert blue[2] > 180 and blue[0] < 20
    assert np.allclose(red, red_again)


def test_image_folder_accepts_a_single_file(tmp_path: Path) -> None:
    write_images(tmp_path)
    source = make_frame_source("image-folder", path=str(tmp_path / "b.png"))
    source.open(64, 48)
    assert frame_size(source.capture()) == (64, 48)


def test_image_folder_missing_or_empty_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(CameraUnavailable, match="does not exist"):
        ImageFolderSource(tmp_path / "nope").open(64, 48)
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(CameraUnavailable, match="no JPEG or PNG"):
        ImageFolderSource(tmp_path).open(64, 48)


def test_a_corrupt_image_is_an_error_and_the_cycle_moves_on(tmp_path: Path) -> None:
    write_images(tmp_path)
    (tmp_path / "0-broken.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    source = ImageFolderSource(tmp_path)
    source.open(64, 48)
    with pytest.raises(CameraError, match=r"0-broken\.jpg"):
        source.capture()
    assert source.capture().shape == (48, 64, 3)  # a.jpg, next in the cycle


# --- fitting and conversions --------------------------------------------------------------


def test_fit_rgb_crops_the_centre_to_keep_the_shape() -> None:
    wide = np.zeros((100, 400, 3), dtype=np.uint8)
    wide[:, :100] = 255  # a white left quarter, cropped away when fitting to 4:3
    fitted = fit_rgb(wide, 64, 48)
    assert fitted.shape == (48, 64, 3) and fitted.max() == 0
    tall = np.zeros((400, 100, 3), dtype=np.uint8)
    tall[150:250] = 200  # a band across the middle survives
    assert fit_rgb(tall, 40, 40)[20, 20, 0] == 200


@pytest.mark.parametrize(
    ("src", "dst"),
    [((1920, 1080), (768, 432)), ((320, 240), (768, 576)), ((1000, 700), (333, 250))],
)
def test_fit_rgb_gives_the_exact_size_and_keeps_the_colour(
    src: tuple[int, int], dst: tuple[int, int]
) -> None:
    image = np.full((src[1], src[0], 3), (10, 120, 240), dtype=np.uint8)
    fitted = fit_rgb(image, *dst)
    assert fitted.shape == (dst[1], dst[0], 3)
    assert np.array_equal(np.unique(fitted.reshape(-1, 3), axis=0), [[10, 120, 240]])


def test_fit_rgb_averages_blocks_when_shrinking() -> None:
    checker = np.zeros((64, 64, 3), dtype=np.uint8)
    checker[::2, ::2] = checker[1::2, 1::2] = 255  # pixel checkerboard: averages to grey
    assert np.all(np.abs(fit_rgb(checker, 16, 16).astype(int) - 128) <= 1)


def reference_fit(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """The fit spelled out: centre crop to the shape, block means, nearest pixel."""
    src_h, src_w = image.shape[:2]
    scale = min(src_w / width, src_h / height)
    crop_w, crop_h = round(width * scale), round(height * scale)
    x0, y0 = (src_w - crop_w) // 2, (src_h - crop_h) // 2
    crop = image[y0 : y0 + crop_h, x0 : x0 + crop_w].astype(np.float64)
    factor = min(crop_h // height, crop_w // width)
    if factor >= 2:
        h, w = crop_h // factor, crop_w // factor
        crop = crop[: h * factor, : w * factor].reshape(h, factor, w, factor, 3).mean((1, 3))
        crop = np.rint(crop)
    rows = [int((y + 0.5) * crop.shape[0] / height) for y in range(height)]
    cols = [int((x + 0.5) * crop.shape[1] / width) for x in range(width)]
    return crop[np.ix_(rows, cols)].astype(np.uint8)


@pytest.mark.parametrize(
    ("src", "dst"),
    [
        ((1280, 720), (768, 576)),
        ((1920, 1080), (640, 360)),
        ((300, 200), (64, 48)),
        ((90, 60), (64, 48)),
    ],
)
def test_the_fitter_agrees_with_the_fit_spelled_out(
    src: tuple[int, int], dst: tuple[int, int]
) -> None:
    image = np.random.default_rng(7).integers(0, 256, (src[1], src[0], 3), dtype=np.uint8)
    fitted = RgbFitter(*dst).fit(image)
    assert fitted.shape == (dst[1], dst[0], 3)
    assert np.abs(fitted.astype(int) - reference_fit(image, *dst)).max() <= 1  # float32 means
    assert np.array_equal(fitted, fit_rgb(image, *dst))


def test_the_fitter_keeps_its_arrays_from_frame_to_frame() -> None:
    rng = np.random.default_rng(3)
    fitter = RgbFitter(64, 48)
    first_image, second_image = (rng.integers(0, 256, (96, 160, 3), dtype=np.uint8) for _ in "ab")
    first = fitter.fit(first_image)
    first_copy = first.copy()
    second = fitter.fit(second_image)
    assert np.shares_memory(first, second)  # no new megabytes per frame
    assert np.array_equal(second, fit_rgb(second_image, 64, 48))
    assert not np.array_equal(second, first_copy)
    other_shape = fitter.fit(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8))
    assert other_shape.shape == (48, 64, 3)  # a source that changes size is fitted anew


def test_yuyv_repacks_to_i420_planes() -> None:
    h, w, stride = 4, 6, 16  # rows padded to 16 bytes
    y = np.arange(h * w, dtype=np.uint8).reshape(h, w)
    u = np.full((h, w // 2), 77, dtype=np.uint8)
    v = np.full((h, w // 2), 200, dtype=np.uint8)
    u[0] = 70  # even rows carry the chroma that is kept
    packed = np.zeros((h, stride), dtype=np.uint8)
    packed[:, 0 : 2 * w : 2] = y
    packed[:, 1 : 2 * w : 4] = u
    packed[:, 3 : 2 * w : 4] = v
    frame = yuyv_to_i420(packed.tobytes(), w, h, stride)
    assert np.array_equal(frame.y, y)
    assert frame.u.shape == (2, 3) and frame.u[0, 0] == 70 and frame.u[1, 0] == 77
    assert np.all(frame.v == 200)


# --- JPEG ---------------------------------------------------------------------------------


def test_jpeg_from_rgb_decodes_close_to_the_original() -> None:
    image = photo_like(768, 576)
    jpeg = JpegEncoder(quality=90).encode(image)
    assert simplejpeg.decode_jpeg_header(jpeg) == (576, 768, "YCbCr", "420")
    error = np.abs(simplejpeg.decode_jpeg(jpeg).astype(int) - image.astype(int)).mean()
    assert error < 6


def test_jpeg_decodes_at_the_smallest_scale_that_covers_the_size() -> None:
    image = photo_like(640, 480)
    jpeg = JpegEncoder(quality=90).encode(image)
    assert decode_jpeg(jpeg, 640, 480).shape == (480, 640, 3)
    assert decode_jpeg(jpeg, 300, 200).shape == (240, 320, 3)  # 1/2: 1/4 would be too small
    luma = decode_jpeg(jpeg, 80, 60, gray=True)
    assert luma.shape == (60, 80) and luma.dtype == np.uint8  # 1/8, one plane
    assert abs(float(luma.mean()) - float(luma_of_rgb(image).mean())) < 3
    with pytest.raises(CameraError, match=r"image x\.jpg is not a valid JPEG"):
        decode_jpeg(b"\xff\xd8 torn", 80, 60, what="image x.jpg")


def peak_allocation(work: Callable[[], object]) -> int:
    """The most memory ``work`` held at once, in bytes, as tracemalloc (which numpy reports
    its arrays to) saw it."""
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_jpeg_fitter_decodes_into_the_same_arrays_each_frame() -> None:
    small, large = (
        JpegEncoder(quality=90).encode(photo_like(w, h, seed=w))
        for w, h in ((320, 240), (1280, 720))
    )
    fitter = JpegFitter(320, 240)
    first = fitter.fit(small).copy()
    assert np.array_equal(first, fit_rgb(decode_jpeg(small, 320, 240), 320, 240))
    again = fitter.fit(large)  # a larger JPEG: a larger decode array, kept from now on
    assert np.array_equal(again, fit_rgb(decode_jpeg(large, 320, 240), 320, 240))
    assert np.array_equal(fitter.fit(small), first)
    assert np.shares_memory(fitter.fit(large), again)
    # From now on no frame allocates a decode (691 KB for the large one at 1/2) or a frame.
    assert peak_allocation(lambda: (fitter.fit(small), fitter.fit(large))) < 64 * 1024
    assert peak_allocation(lambda: JpegFitter(320, 240).fit(large)) > 640 * 360 * 3  # a new one
    with pytest.raises(CameraError, match=r"image y\.jpg is not a valid JPEG"):
        fitter.fit(b"\xff\xd8 torn", what="image y.jpg")


def test_jpeg_from_yuv_planes_matches_the_rgb_it_came_from() -> None:
    image = photo_like(768, 576, seed=2)
    jpeg = JpegEncoder(quality=90).encode(rgb_to_i420(image))
    error = np.abs(simplejpeg.decode_jpeg(jpeg).astype(int) - image.astype(int)).mean()
    assert error < 6


def test_jpeg_accepts_strided_plane_views() -> None:
    # Planes as views into a padded buffer, as picamera2 and YUYV repacking hand them over.
    buffer = np.full((48, 80), 128, dtype=np.uint8)
    frame = YuvFrame(y=buffer[:, :64], u=buffer[:24, :32], v=buffer[24:, 40:72])
    assert simplejpeg.decode_jpeg_header(JpegEncoder().encode(frame))[:2] == (48, 64)
    column_view = YuvFrame(y=buffer[:, ::2][:, :32], u=buffer[:24, :16], v=buffer[:24, :16])
    assert simplejpeg.decode_jpeg_header(JpegEncoder().encode(column_view))[:2] == (48, 32)


def test_camera_jpeg_passes_through_untouched() -> None:
    original = simplejpeg.encode_jpeg(photo_like(64, 48), 50, "RGB", "420")
    frame = JpegFrame.from_bytes(original)
    assert (frame.width, frame.height) == (64, 48) == frame_size(frame)
    assert JpegEncoder(quality=95).encode(frame) == original


def test_a_torn_camera_jpeg_is_a_camera_error() -> None:
    with pytest.raises(CameraError, match="not a valid JPEG"):
        JpegFrame.from_bytes(b"\x00\x01garbage")


def test_jpeg_quality_changes_the_size_and_bad_input_is_refused() -> None:
    image = photo_like(320, 240)
    assert len(JpegEncoder(30).encode(image)) < len(JpegEncoder(95).encode(image))
    with pytest.raises(ValueError, match="quality"):
        JpegEncoder(101)
    with pytest.raises(ValueError, match="RGB"):
        JpegEncoder().encode(np.zeros((48, 64, 4), dtype=np.uint8))


# --- thumbnails and change detection ------------------------------------------------------


def test_thumbnail_agrees_across_frame_representations() -> None:
    image = photo_like(768, 576, seed=3)
    from_rgb = luma_thumbnail(image)
    from_yuv = luma_thumbnail(rgb_to_i420(image))
    from_jpeg = luma_thumbnail(JpegFrame.from_bytes(JpegEncoder(95).encode(image)))
    assert from_rgb.shape == (24, 32) and from_rgb.dtype == np.float32
    assert np.abs(from_rgb - from_yuv).mean() < 1.0
    assert np.abs(from_rgb - from_jpeg).mean() < 3.0
    # And it is the picture's luma: a mid-grey frame gives mid-grey cells.
    grey = np.full((100, 100, 3), 128, dtype=np.uint8)
    assert np.allclose(luma_thumbnail(grey), 128, atol=0.5)
    assert luma_of_rgb(np.array([[255, 255, 255]], dtype=np.uint8))[0] == pytest.approx(255, 0.01)


def test_change_detector_decides_on_threshold_and_max_interval() -> None:
    detector = ChangeDetector(threshold=3.0, max_interval_s=10.0)
    still = np.full((24, 32), 100, dtype=np.float32)
    assert detector.should_send(still, now=0.0)  # the first frame always goes
    detector.mark_sent(still, now=0.0)
    assert not detector.should_send(still + 2.0, now=1.0)  # below the threshold
    assert detector.last_difference == pytest.approx(2.0)
    assert detector.should_send(still + 3.0, now=2.0)  # at the threshold
    # A change in one corner: an eighth of the cells by 40 levels is 5 levels on average.
    corner = still.copy()
    corner[:12, :8] += 40
    assert detector.should_send(corner, now=3.0)
    assert detector.should_send(still, now=10.0)  # nothing changed, but 10 s passed
    detector.reset()
    assert detector.should_send(still, now=10.5)  # after a reset the next always goes


def test_change_is_measured_against_the_last_frame_sent() -> None:
    detector = ChangeDetector(threshold=3.0, max_interval_s=100.0)
    base = np.zeros((24, 32), dtype=np.float32)
    detector.mark_sent(base, now=0.0)
    # A slow drift of 1 level per frame: each step is small, but it adds up to a send.
    decisions = [detector.should_send(base + step, now=step) for step in (1.0, 2.0, 3.0)]
    assert decisions == [False, False, True]


# --- factory ------------------------------------------------------------------------------


def test_factory_builds_each_kind(tmp_path: Path) -> None:
    assert isinstance(make_frame_source("test-pattern"), TestPatternSource)
    assert isinstance(make_frame_source("image-folder", path=tmp_path), ImageFolderSource)
    v4l2 = make_frame_source("v4l2", device="/dev/video3")
    assert isinstance(v4l2, V4L2Source) and v4l2.device == "/dev/video3"
    pi = make_frame_source("picamera2", camera_num=1, frame_rate=5.0)
    assert isinstance(pi, Picamera2Source) and pi.camera_num == 1 and pi.frame_rate == 5.0


def test_factory_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match=r"unknown camera source 'webcam'.*picamera2, v4l2"):
        make_frame_source("webcam")
    with pytest.raises(ValueError, match=r"does not take devce.*device"):
        make_frame_source("v4l2", devce="/dev/video0")
    with pytest.raises(ValueError, match="needs a path"):
        make_frame_source("image-folder")
