"""V4L2Source: the ioctl ABI, real syscalls on non-camera nodes, and format negotiation.

There is no V4L2 device on the test machines, so the ABI is checked against the numbers in
linux/videodev2.h (identical on arm64 and x86-64), the error paths run real syscalls against
paths that are not cameras, and the capture logic runs against ``StandInDevice``, which has
``KernelV4L2Device``'s interface and serves real MJPEG and YUYV bytes.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
from pathlib import Path

import numpy as np
import pytest
import simplejpeg

from agent.media.camera import (
    CameraError,
    CameraStream,
    CameraUnavailable,
    JpegFrame,
    YuvFrame,
    list_cameras,
    v4l2,
)
from agent.media.camera.v4l2 import (
    CAP_STREAMING,
    CAP_VIDEO_CAPTURE,
    CAP_VIDEO_M2M,
    PIX_FMT_MJPEG,
    PIX_FMT_YUYV,
    DeviceInfo,
    KernelV4L2Device,
    StreamFormat,
    V4L2Source,
    choose_format,
    fourcc,
    list_v4l2_capture_devices,
)

# --- the ABI ------------------------------------------------------------------------------


def test_ioctl_numbers_match_videodev2_h() -> None:
    # Values printed by a C program including <linux/videodev2.h> on a 64-bit Linux.
    assert v4l2.VIDIOC_QUERYCAP == 0x80685600
    assert v4l2.VIDIOC_ENUM_FMT == 0xC0405602
    assert v4l2.VIDIOC_S_FMT == 0xC0D05605
    assert v4l2.VIDIOC_REQBUFS == 0xC0145608
    assert v4l2.VIDIOC_QUERYBUF == 0xC0585609
    assert v4l2.VIDIOC_QBUF == 0xC058560F
    assert v4l2.VIDIOC_DQBUF == 0xC0585611
    assert v4l2.VIDIOC_STREAMON == 0x40045612
    assert v4l2.VIDIOC_STREAMOFF == 0x40045613
    assert v4l2.VIDIOC_ENUM_FRAMESIZES == 0xC02C564A


def test_struct_layouts_match_the_kernel() -> None:
    assert v4l2.Buffer.m.offset == 64 and v4l2.Buffer.length.offset == 72
    assert v4l2.Buffer.bytesused.offset == 8
    assert ctypes.sizeof(v4l2.Format) == 208 and v4l2.Format.fmt.offset == 8
    assert ctypes.sizeof(v4l2.PixFormat) == 48


def test_fourcc_codes() -> None:
    assert fourcc("MJPG") == 0x47504A4D == PIX_FMT_MJPEG
    assert fourcc("YUYV") == 0x56595559 == PIX_FMT_YUYV


# --- real syscalls on things that are not cameras -----------------------------------------


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_missing_device_is_unavailable() -> None:
    with pytest.raises(CameraUnavailable, match="no such camera"):
        V4L2Source("/dev/video-does-not-exist").open(640, 480)


def test_a_node_that_is_not_v4l2_is_refused_and_not_leaked() -> None:
    before = open_fds()
    with pytest.raises(CameraUnavailable, match="/dev/null: not a V4L2 video device"):
        V4L2Source("/dev/null").open(640, 480)
    assert open_fds() == before


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (errno.EACCES, "permission denied; add the service user to the 'video' group"),
        (errno.EBUSY, "busy"),
        (errno.ENODEV, "unplugged"),
        (errno.EIO, "read frame failed"),
    ],
)
def test_device_errors_say_what_to_do(code: int, message: str) -> None:
    error = v4l2._device_error("/dev/video0", "read frame", OSError(code, os.strerror(code)))
    assert message in str(error)
    assert isinstance(error, CameraError)


# --- format negotiation and capture against a stand-in device -----------------------------


def jpeg_of(width: int, height: int, value: int = 120) -> bytes:
    image = np.full((height, width, 3), value, dtype=np.uint8)
    image[: height // 2, :, 0] = 250  # a red-ish top half
    return bytes(simplejpeg.encode_jpeg(image, 85, "RGB", "420"))


def yuyv_of(width: int, height: int, stride: int) -> bytes:
    packed = np.zeros((height, stride), dtype=np.uint8)
    packed[:, 0 : 2 * width : 2] = 180  # Y
    packed[:, 1 : 2 * width : 4] = 100  # U
    packed[:, 3 : 2 * width : 4] = 160  # V
    return packed.tobytes()


class StandInDevice:
    """KernelV4L2Device's interface over canned formats and frames."""

    opened: list[StandInDevice] = []  # noqa: RUF012 - a per-test record, reset by a fixture

    def __init__(
        self,
        path: str,
        formats: dict[int, list[tuple[int, int]]] | None = None,
        caps: int = CAP_VIDEO_CAPTURE | CAP_STREAMING,
        stride_pad: int = 0,
        frame: bytes | None = None,
    ) -> None:
        self.path = path
        self.formats = formats if formats is not None else {PIX_FMT_MJPEG: [(640, 480)]}
        self.caps = caps
        self.stride_pad = stride_pad
        self.frame = frame
        self.started: StreamFormat | None = None
        self.closed = False
        self.reads = 0
        StandInDevice.opened.append(self)

    def info(self) -> DeviceInfo:
        return DeviceInfo("uvcvideo", "HD Webcam C270", "usb-0000:01:00.0-1.2", self.caps)

    def pixel_formats(self) -> list[int]:
        return list(self.formats)

    def frame_sizes(self, pixel_format: int) -> list[tuple[int, int]]:
        return self.formats[pixel_format]

    def start(self, pixel_format: int, width: int, height: int) -> StreamFormat:
        stride = width * 2 + self.stride_pad if pixel_format == PIX_FMT_YUYV else 0
        self.started = StreamFormat(pixel_format, width, height, stride)
        return self.started

    def read_frame(self, timeout_s: float) -> bytes:
        assert self.started is not None
        self.reads += 1
        if self.frame is not None:
            return self.frame
        fmt = self.started
        if fmt.pixel_format == PIX_FMT_MJPEG:
            return jpeg_of(fmt.width, fmt.height, value=self.reads % 200)
        return yuyv_of(fmt.width, fmt.height, fmt.bytes_per_line)

    def close(self) -> None:
        self.closed = True


@pytest.fixture(autouse=True)
def _reset_devices() -> None:
    StandInDevice.opened = []


def source_with(**device_options: object) -> V4L2Source:
    def factory(path: str) -> StandInDevice:
        return StandInDevice(path, **device_options)  # type: ignore[arg-type]

    return V4L2Source("/dev/video0", device_factory=factory)


def test_mjpeg_at_the_exact_size_passes_through_untouched() -> None:
    source = source_with(formats={PIX_FMT_YUYV: [(640, 480)], PIX_FMT_MJPEG: [(640, 480)]})
    source.open(640, 480)
    frame = source.capture()
    assert isinstance(frame, JpegFrame)
    assert frame.data == jpeg_of(640, 480, value=1)  # the camera's own bytes
    assert source.stream_format == StreamFormat(PIX_FMT_MJPEG, 640, 480, 0)


def test_yuyv_at_the_exact_size_becomes_i420_planes() -> None:
    source = source_with(formats={PIX_FMT_YUYV: [(320, 240)]}, stride_pad=32)
    source.open(320, 240)
    frame = source.capture()
    assert isinstance(frame, YuvFrame) and (frame.width, frame.height) == (320, 240)
    assert np.all(frame.y == 180) and np.all(frame.u == 100) and np.all(frame.v == 160)


def test_without_the_exact_size_the_smallest_covering_mode_is_fitted() -> None:
    sizes = [(320, 240), (1280, 720), (1920, 1080), (640, 480)]
    source = source_with(formats={PIX_FMT_MJPEG: sizes})
    source.open(768, 576)
    assert source.stream_format is not None
    assert (source.stream_format.width, source.stream_format.height) == (1280, 720)
    frame = source.capture()
    assert isinstance(frame, np.ndarray) and frame.shape == (576, 768, 3)
    assert frame[10, 10, 0] > 230 and frame[500, 10, 0] < 140  # still right way up


def test_yuyv_fallback_is_fitted_in_colour() -> None:
    source = source_with(formats={PIX_FMT_YUYV: [(1280, 720)]})
    source.open(768, 576)
    frame = source.capture()
    assert isinstance(frame, np.ndarray) and frame.shape == (576, 768, 3)
    # Y 180, U 100, V 160 in BT.601 limited range is a warm light grey-pink.
    r, g, b = (int(c) for c in frame[100, 100])
    assert r > g > b - 10 and 150 < g < 210


def test_the_largest_mode_is_used_when_none_covers_the_request() -> None:
    source = source_with(formats={PIX_FMT_MJPEG: [(320, 240), (640, 480)]})
    source.open(768, 576)
    assert source.stream_format == StreamFormat(PIX_FMT_MJPEG, 640, 480, 0)
    frame = source.capture()
    assert isinstance(frame, np.ndarray) and frame.shape == (576, 768, 3)


def test_choose_format_prefers_passthrough_then_exact_yuyv() -> None:
    dev = StandInDevice(
        "/dev/video0", formats={PIX_FMT_MJPEG: [(1280, 720)], PIX_FMT_YUYV: [(640, 480)]}
    )
    assert choose_format(dev, 640, 480) == (PIX_FMT_YUYV, (640, 480))
    assert choose_format(dev, 1280, 720) == (PIX_FMT_MJPEG, (1280, 720))
    assert choose_format(dev, 800, 600) == (PIX_FMT_MJPEG, (1280, 720))


def test_a_camera_without_usable_formats_is_unavailable_and_closed() -> None:
    source = source_with(formats={fourcc("GREY"): [(640, 480)]})
    with pytest.raises(CameraUnavailable, match=r"offers no MJPEG or YUYV.*GREY"):
        source.open(640, 480)
    assert StandInDevice.opened[0].closed


def test_a_codec_node_is_not_a_camera() -> None:
    source = source_with(caps=CAP_VIDEO_M2M | CAP_STREAMING | CAP_VIDEO_CAPTURE)
    with pytest.raises(CameraUnavailable, match="not a video capture device"):
        source.open(640, 480)
    assert StandInDevice.opened[0].closed


@pytest.mark.parametrize(
    ("formats", "frame", "message"),
    [
        ({PIX_FMT_MJPEG: [(640, 480)]}, b"\xff\xd8 torn", "not a valid JPEG"),
        ({PIX_FMT_YUYV: [(640, 480)]}, b"\x00" * 1000, "short YUYV frame"),
    ],
)
def test_corrupt_frames_are_camera_errors(
    formats: dict[int, list[tuple[int, int]]], frame: bytes, message: str
) -> None:
    source = source_with(formats=formats, frame=frame)
    source.open(640, 480)
    with pytest.raises(CameraError, match=message):
        source.capture()


async def test_stream_from_a_webcam_sends_the_cameras_jpeg() -> None:
    source = source_with(formats={PIX_FMT_MJPEG: [(640, 480)]})
    stream = CameraStream(source, width=640, height=480, interval_s=0.01, quality=10)
    got: list[bytes] = []
    async with contextlib.aclosing(stream.frames()) as frames:
        async for jpeg in frames:
            got.append(jpeg)
            if len(got) == 2:
                break
    await stream.aclose()
    assert StandInDevice.opened[0].closed
    assert got == [jpeg_of(640, 480, value=1), jpeg_of(640, 480, value=2)]


# --- listing ------------------------------------------------------------------------------


def test_listing_keeps_webcams_and_drops_pipeline_and_codec_nodes(tmp_path: Path) -> None:
    dev, sys_dir = tmp_path / "dev", tmp_path / "sys"
    dev.mkdir()
    for n in (0, 1, 10, 2):
        (dev / f"video{n}").touch()
        (sys_dir / f"video{n}").mkdir(parents=True)
        (sys_dir / f"video{n}" / "name").write_text(f"node {n}\n")
    (dev / "videodev").touch()  # not a numbered node

    def factory(path: str) -> StandInDevice:
        number = int(path.rsplit("video", 1)[1])
        if number == 2:
            raise CameraUnavailable(f"{path}: permission denied")
        device = StandInDevice(path)
        device.caps = {
            0: CAP_VIDEO_CAPTURE | CAP_STREAMING,
            1: 0x00800000,  # metadata capture: the UVC twin node
            10: CAP_VIDEO_M2M | CAP_STREAMING,  # bcm2835-codec
        }[number]
        return device

    nodes = list_v4l2_capture_devices(str(dev), str(sys_dir), device_factory=factory)
    assert [n.path for n in nodes] == [str(dev / "video0"), str(dev / "video2")]
    assert nodes[0].name == "HD Webcam C270" and nodes[0].driver == "uvcvideo"
    assert nodes[1].name == "node 2" and "permission denied" in nodes[1].driver
    assert all(d.closed for d in StandInDevice.opened)


def test_listing_real_nodes_skips_files_that_are_not_v4l2(tmp_path: Path) -> None:
    (tmp_path / "video0").write_bytes(b"")  # a real file: QUERYCAP fails with ENOTTY
    assert list_v4l2_capture_devices(str(tmp_path), str(tmp_path)) == []
    assert list_cameras(dev_dir=str(tmp_path), sys_dir=str(tmp_path)) == []


def test_kernel_device_close_is_idempotent() -> None:
    device = KernelV4L2Device("/dev/null")
    device.close()
    device.close()
