"""USB webcams over V4L2, spoken directly through ioctl and mmap from the standard library.

Why no library: the candidates were linuxpy (pure Python and a good fit, but GPL-3.0, which
an Apache-2.0 daemon should not import), OpenCV headless (a ~50 MB wheel and tens of MB of
resident memory on a 512 MB Zero 2 W, and awkward about handing over MJPEG untouched) and
PyAV (bundles FFmpeg; more than a 1 FPS still grabber needs). The part of V4L2 a frame
grabber needs is eleven ioctls on five fixed-layout structs, part of the kernel's stable
user-space ABI and identical on aarch64 and x86-64, so it costs no dependency at all.

Format choice, cheapest first:
1. MJPEG at exactly the requested size: the camera's JPEG goes out as it is (no encode).
2. YUYV at exactly the requested size: repacked to I420 planes (copies, no arithmetic).
3. Otherwise the smallest MJPEG (else YUYV) size that covers the request, fitted in software.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import mmap
import os
import select
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import structlog

from agent.media.camera.frames import CameraError, CameraUnavailable, Frame, JpegFrame
from agent.media.camera.image import fit_rgb, yuyv_to_i420
from agent.media.camera.jpeg import JpegFitter

log = structlog.get_logger(__name__)

# --- linux/videodev2.h ------------------------------------------------------------------


def fourcc(code: str) -> int:
    """Pack a four-character pixel-format code the way V4L2 does (little-endian)."""
    a, b, c, d = (ord(ch) for ch in code)
    return a | (b << 8) | (c << 16) | (d << 24)


PIX_FMT_MJPEG = fourcc("MJPG")
PIX_FMT_JPEG = fourcc("JPEG")
PIX_FMT_YUYV = fourcc("YUYV")

BUF_TYPE_VIDEO_CAPTURE = 1
MEMORY_MMAP = 1
FIELD_ANY = 0
FRMSIZE_TYPE_DISCRETE = 1
CAP_VIDEO_CAPTURE = 0x00000001
CAP_VIDEO_M2M = 0x00008000
CAP_STREAMING = 0x04000000
CAP_DEVICE_CAPS = 0x80000000
BUF_FLAG_ERROR = 0x00000040


class Capability(ctypes.Structure):
    _fields_ = (
        ("driver", ctypes.c_char * 16),
        ("card", ctypes.c_char * 32),
        ("bus_info", ctypes.c_char * 32),
        ("version", ctypes.c_uint32),
        ("capabilities", ctypes.c_uint32),
        ("device_caps", ctypes.c_uint32),
        ("reserved", ctypes.c_uint32 * 3),
    )


class PixFormat(ctypes.Structure):
    _fields_ = (
        ("width", ctypes.c_uint32),
        ("height", ctypes.c_uint32),
        ("pixelformat", ctypes.c_uint32),
        ("field", ctypes.c_uint32),
        ("bytesperline", ctypes.c_uint32),
        ("sizeimage", ctypes.c_uint32),
        ("colorspace", ctypes.c_uint32),
        ("priv", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("ycbcr_enc", ctypes.c_uint32),
        ("quantization", ctypes.c_uint32),
        ("xfer_func", ctypes.c_uint32),
    )


class _FormatUnion(ctypes.Union):
    # The kernel union holds pointers (struct v4l2_window), hence 8-byte alignment.
    _fields_ = (("pix", PixFormat), ("raw_data", ctypes.c_uint8 * 200), ("_align", ctypes.c_void_p))


class Format(ctypes.Structure):
    _fields_ = (("type", ctypes.c_uint32), ("fmt", _FormatUnion))


class FmtDesc(ctypes.Structure):
    _fields_ = (
        ("index", ctypes.c_uint32),
        ("type", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("description", ctypes.c_char * 32),
        ("pixelformat", ctypes.c_uint32),
        ("mbus_code", ctypes.c_uint32),
        ("reserved", ctypes.c_uint32 * 3),
    )


class _FrmSizeDiscrete(ctypes.Structure):
    _fields_ = (("width", ctypes.c_uint32), ("height", ctypes.c_uint32))


class _FrmSizeStepwise(ctypes.Structure):
    _fields_ = tuple(
        (name, ctypes.c_uint32)
        for name in (
            "min_width",
            "max_width",
            "step_width",
            "min_height",
            "max_height",
            "step_height",
        )
    )


class _FrmSizeUnion(ctypes.Union):
    _fields_ = (("discrete", _FrmSizeDiscrete), ("stepwise", _FrmSizeStepwise))


class FrmSizeEnum(ctypes.Structure):
    _fields_ = (
        ("index", ctypes.c_uint32),
        ("pixel_format", ctypes.c_uint32),
        ("type", ctypes.c_uint32),
        ("size", _FrmSizeUnion),
        ("reserved", ctypes.c_uint32 * 2),
    )


class RequestBuffers(ctypes.Structure):
    _fields_ = (
        ("count", ctypes.c_uint32),
        ("type", ctypes.c_uint32),
        ("memory", ctypes.c_uint32),
        ("capabilities", ctypes.c_uint32),
        ("flags", ctypes.c_uint8),
        ("reserved", ctypes.c_uint8 * 3),
    )


class _TimeVal(ctypes.Structure):
    _fields_ = (("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long))


class _TimeCode(ctypes.Structure):
    _fields_ = (
        ("type", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("frames", ctypes.c_uint8),
        ("seconds", ctypes.c_uint8),
        ("minutes", ctypes.c_uint8),
        ("hours", ctypes.c_uint8),
        ("userbits", ctypes.c_uint8 * 4),
    )


class _BufferM(ctypes.Union):
    _fields_ = (
        ("offset", ctypes.c_uint32),
        ("userptr", ctypes.c_ulong),
        ("planes", ctypes.c_void_p),
        ("fd", ctypes.c_int32),
    )


class Buffer(ctypes.Structure):
    _fields_ = (
        ("index", ctypes.c_uint32),
        ("type", ctypes.c_uint32),
        ("bytesused", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("field", ctypes.c_uint32),
        ("timestamp", _TimeVal),
        ("timecode", _TimeCode),
        ("sequence", ctypes.c_uint32),
        ("memory", ctypes.c_uint32),
        ("m", _BufferM),
        ("length", ctypes.c_uint32),
        ("reserved2", ctypes.c_uint32),
        ("request_fd", ctypes.c_int32),
    )


def _ioc(direction: int, number: int, struct: type[ctypes.Structure] | type[ctypes.c_int]) -> int:
    # asm-generic/ioctl.h: dir(2) | size(14) | type(8) | nr(8); same on arm64 and x86-64.
    return (direction << 30) | (ctypes.sizeof(struct) << 16) | (ord("V") << 8) | number


_WRITE, _READ = 1, 2
VIDIOC_QUERYCAP = _ioc(_READ, 0, Capability)
VIDIOC_ENUM_FMT = _ioc(_READ | _WRITE, 2, FmtDesc)
VIDIOC_S_FMT = _ioc(_READ | _WRITE, 5, Format)
VIDIOC_REQBUFS = _ioc(_READ | _WRITE, 8, RequestBuffers)
VIDIOC_QUERYBUF = _ioc(_READ | _WRITE, 9, Buffer)
VIDIOC_QBUF = _ioc(_READ | _WRITE, 15, Buffer)
VIDIOC_DQBUF = _ioc(_READ | _WRITE, 17, Buffer)
VIDIOC_STREAMON = _ioc(_WRITE, 18, ctypes.c_int)
VIDIOC_STREAMOFF = _ioc(_WRITE, 19, ctypes.c_int)
VIDIOC_ENUM_FRAMESIZES = _ioc(_READ | _WRITE, 74, FrmSizeEnum)


# --- the device ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """What VIDIOC_QUERYCAP says about a device node."""

    driver: str
    card: str
    bus_info: str
    device_caps: int

    @property
    def is_video_capture(self) -> bool:
        """A camera node (not a codec or ISP memory-to-memory node, not metadata only)."""
        caps = self.device_caps
        return bool(caps & CAP_VIDEO_CAPTURE) and not caps & CAP_VIDEO_M2M


@dataclass(frozen=True, slots=True)
class StreamFormat:
    """The format the driver agreed to in VIDIOC_S_FMT."""

    pixel_format: int
    width: int
    height: int
    bytes_per_line: int


class V4L2Device(Protocol):
    """The few operations ``V4L2Source`` needs from a capture device node."""

    def info(self) -> DeviceInfo: ...
    def pixel_formats(self) -> list[int]: ...
    def frame_sizes(self, pixel_format: int) -> list[tuple[int, int]]: ...
    def start(self, pixel_format: int, width: int, height: int) -> StreamFormat: ...
    def read_frame(self, timeout_s: float) -> bytes: ...
    def close(self) -> None: ...


class KernelV4L2Device:
    """A V4L2 capture node driven with ioctl and mmap'd streaming buffers."""

    def __init__(self, path: str, buffer_count: int = 2) -> None:
        self.path = path
        self._buffer_count = buffer_count
        self._buffers: list[mmap.mmap] = []
        self._streaming = False
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            raise _device_error(path, "open", exc) from exc

    def _ioctl(self, request: int, arg: ctypes.Structure | ctypes.c_int, what: str) -> None:
        try:
            fcntl.ioctl(self._fd, request, arg)
        except OSError as exc:
            raise _device_error(self.path, what, exc) from exc

    def info(self) -> DeviceInfo:
        cap = Capability()
        self._ioctl(VIDIOC_QUERYCAP, cap, "query")
        caps = cap.device_caps if cap.capabilities & CAP_DEVICE_CAPS else cap.capabilities
        return DeviceInfo(
            driver=cap.driver.decode(errors="replace"),
            card=cap.card.decode(errors="replace"),
            bus_info=cap.bus_info.decode(errors="replace"),
            device_caps=caps,
        )

    def pixel_formats(self) -> list[int]:
        formats: list[int] = []
        for index in range(64):
            desc = FmtDesc(index=index, type=BUF_TYPE_VIDEO_CAPTURE)
            if not self._enumerate(VIDIOC_ENUM_FMT, desc):
                break
            formats.append(desc.pixelformat)
        return formats

    def frame_sizes(self, pixel_format: int) -> list[tuple[int, int]]:
        sizes: list[tuple[int, int]] = []
        for index in range(256):
            entry = FrmSizeEnum(index=index, pixel_format=pixel_format)
            if not self._enumerate(VIDIOC_ENUM_FRAMESIZES, entry):
                break
            if entry.type == FRMSIZE_TYPE_DISCRETE:
                sizes.append((entry.size.discrete.width, entry.size.discrete.height))
            else:  # stepwise or continuous: report the range's corners
                step = entry.size.stepwise
                sizes += [(step.min_width, step.min_height), (step.max_width, step.max_height)]
                break
        return sizes

    def _enumerate(self, request: int, arg: ctypes.Structure) -> bool:
        try:
            fcntl.ioctl(self._fd, request, arg)
        except OSError as exc:
            if exc.errno == errno.EINVAL:  # past the last entry
                return False
            raise _device_error(self.path, "enumerate", exc) from exc
        return True

    def start(self, pixel_format: int, width: int, height: int) -> StreamFormat:
        fmt = Format(type=BUF_TYPE_VIDEO_CAPTURE)
        fmt.fmt.pix.width, fmt.fmt.pix.height = width, height
        fmt.fmt.pix.pixelformat, fmt.fmt.pix.field = pixel_format, FIELD_ANY
        self._ioctl(VIDIOC_S_FMT, fmt, "set format")
        pix = fmt.fmt.pix
        agreed = StreamFormat(pix.pixelformat, pix.width, pix.height, pix.bytesperline)
        request = RequestBuffers(
            count=self._buffer_count, type=BUF_TYPE_VIDEO_CAPTURE, memory=MEMORY_MMAP
        )
        self._ioctl(VIDIOC_REQBUFS, request, "request buffers")
        for index in range(request.count):
            buf = Buffer(index=index, type=BUF_TYPE_VIDEO_CAPTURE, memory=MEMORY_MMAP)
            self._ioctl(VIDIOC_QUERYBUF, buf, "query buffer")
            self._buffers.append(
                mmap.mmap(
                    self._fd, buf.length, mmap.MAP_SHARED, mmap.PROT_READ, offset=buf.m.offset
                )
            )
            self._ioctl(VIDIOC_QBUF, buf, "queue buffer")
        self._ioctl(VIDIOC_STREAMON, ctypes.c_int(BUF_TYPE_VIDEO_CAPTURE), "start streaming")
        self._streaming = True
        return agreed

    def read_frame(self, timeout_s: float) -> bytes:
        """Return a frame captured after this call began.

        Buffers filled while nobody asked are up to a whole interval old at 1 FPS: they are
        handed straight back to the driver, and the next frame it completes is returned.
        """
        while self._dequeue(0.0, keep=False) is not None:
            pass
        deadline = time.monotonic() + timeout_s
        while (remaining := deadline - time.monotonic()) > 0:
            data = self._dequeue(remaining, keep=True)
            if data:
                return data
        raise CameraError(f"{self.path}: no frame within {timeout_s:g} s")

    def _dequeue(self, wait_s: float, *, keep: bool) -> bytes | None:
        """Take one filled buffer (waiting up to ``wait_s``), copy it if ``keep``, requeue it.

        Returns None when no buffer was ready, and ``b""`` for one the driver marked as
        corrupt (a USB transfer error), which the caller skips.
        """
        ready, _, _ = select.select([self._fd], [], [], wait_s)
        if not ready:
            return None
        buf = Buffer(type=BUF_TYPE_VIDEO_CAPTURE, memory=MEMORY_MMAP)
        try:
            fcntl.ioctl(self._fd, VIDIOC_DQBUF, buf)
        except BlockingIOError:
            return None
        except OSError as exc:
            raise _device_error(self.path, "read frame", exc) from exc
        data = b""
        if keep and not buf.flags & BUF_FLAG_ERROR:
            data = bytes(self._buffers[buf.index][: buf.bytesused])
        self._ioctl(VIDIOC_QBUF, buf, "requeue buffer")
        return data

    def close(self) -> None:
        if self._fd < 0:
            return
        if self._streaming:
            try:
                fcntl.ioctl(self._fd, VIDIOC_STREAMOFF, ctypes.c_int(BUF_TYPE_VIDEO_CAPTURE))
            except OSError as exc:  # an unplugged camera: the fd is closed below anyway
                log.debug("camera.streamoff_failed", device=self.path, error=str(exc))
            self._streaming = False
        for buffer in self._buffers:
            buffer.close()
        self._buffers = []
        os.close(self._fd)
        self._fd = -1


def _device_error(path: str, what: str, exc: OSError) -> CameraError:
    code = exc.errno
    if code in (errno.ENOENT, errno.ENODEV, errno.ENXIO):
        return CameraUnavailable(f"{path}: no such camera (unplugged?)")
    if code in (errno.EACCES, errno.EPERM):
        return CameraUnavailable(
            f"{path}: permission denied; add the service user to the 'video' group"
        )
    if code == errno.EBUSY:
        return CameraUnavailable(f"{path}: camera is busy (another program is using it)")
    if code == errno.ENOTTY:
        return CameraUnavailable(f"{path}: not a V4L2 video device")
    return CameraError(f"{path}: {what} failed: {exc.strerror or exc}")


# --- the frame source ---------------------------------------------------------------------


class V4L2Source:
    """Frames from a USB (UVC) webcam, preferring the camera's own MJPEG at the exact size.

    Args:
        device: the node, e.g. ``/dev/video0`` (``edge-agent devices`` lists them).
        frame_timeout_s: how long ``capture`` waits for a frame before reporting a fault.
        device_factory: opens a ``V4L2Device`` for a path; tests pass a stand-in.
    """

    def __init__(
        self,
        device: str = "/dev/video0",
        *,
        frame_timeout_s: float = 2.0,
        device_factory: Callable[[str], V4L2Device] = KernelV4L2Device,
    ) -> None:
        self.device = device
        self.frame_timeout_s = frame_timeout_s
        self._factory = device_factory
        self._dev: V4L2Device | None = None
        self._format: StreamFormat | None = None
        self._size = (0, 0)
        self._jpeg = JpegFitter(0, 0)

    @property
    def stream_format(self) -> StreamFormat | None:
        """The format the camera agreed to, once open."""
        return self._format

    def open(self, width: int, height: int) -> None:
        dev = self._factory(self.device)
        try:
            info = dev.info()
            if not info.is_video_capture:
                raise CameraUnavailable(
                    f"{self.device} ({info.card}) is not a video capture device"
                )
            pixel_format, size = choose_format(dev, width, height)
            agreed = dev.start(pixel_format, *size)
        except BaseException:
            dev.close()
            raise
        self._dev, self._format, self._size = dev, agreed, (width, height)
        self._jpeg = JpegFitter(width, height)
        log.info(
            "camera.v4l2_opened",
            device=self.device,
            card=info.card,
            format=_fourcc_name(agreed.pixel_format),
            size=f"{agreed.width}x{agreed.height}",
            passthrough=agreed.pixel_format in (PIX_FMT_MJPEG, PIX_FMT_JPEG)
            and (agreed.width, agreed.height) == (width, height),
        )

    def capture(self) -> Frame:
        dev, fmt = self._dev, self._format
        if dev is None or fmt is None:
            raise CameraError(f"{self.device} is not open")
        data = dev.read_frame(self.frame_timeout_s)
        width, height = self._size
        exact = (fmt.width, fmt.height) == (width, height)
        if fmt.pixel_format in (PIX_FMT_MJPEG, PIX_FMT_JPEG):
            if exact:
                return JpegFrame.from_bytes(data)
            return self._jpeg.fit(data)
        if fmt.pixel_format == PIX_FMT_YUYV:
            stride = fmt.bytes_per_line or fmt.width * 2
            if len(data) < stride * fmt.height:
                raise CameraError(f"{self.device}: short YUYV frame ({len(data)} bytes)")
            yuv = yuyv_to_i420(data, fmt.width, fmt.height, stride)
            if exact:
                return yuv
            return fit_rgb(_i420_to_rgb(yuv.y, yuv.u, yuv.v), width, height)
        raise CameraError(
            f"{self.device}: unsupported pixel format {_fourcc_name(fmt.pixel_format)}"
        )

    def close(self) -> None:
        dev, self._dev, self._format = self._dev, None, None
        if dev is not None:
            dev.close()


def choose_format(dev: V4L2Device, width: int, height: int) -> tuple[int, tuple[int, int]]:
    """Pick (pixel format, size) for a request, cheapest path first (see the module doc)."""
    offered = {fmt: dev.frame_sizes(fmt) for fmt in dev.pixel_formats()}
    preference = [f for f in (PIX_FMT_MJPEG, PIX_FMT_JPEG, PIX_FMT_YUYV) if f in offered]
    if not preference:
        names = ", ".join(_fourcc_name(f) for f in offered) or "none"
        raise CameraUnavailable(f"camera offers no MJPEG or YUYV format (it offers {names})")
    for fmt in preference:
        if (width, height) in offered[fmt]:
            return fmt, (width, height)
    for fmt in preference:
        covering = [s for s in offered[fmt] if s[0] >= width and s[1] >= height]
        if covering:
            return fmt, min(covering, key=lambda s: s[0] * s[1])
    fmt = preference[0]
    largest = max(offered[fmt], key=lambda s: s[0] * s[1], default=(width, height))
    return fmt, largest


def _i420_to_rgb(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """BT.601 limited-range YUV to RGB; only for the rare resize fallback."""
    luma = (y.astype(np.float32) - 16.0) * 1.164
    cb = np.repeat(np.repeat(u.astype(np.float32) - 128.0, 2, axis=0), 2, axis=1)
    cr = np.repeat(np.repeat(v.astype(np.float32) - 128.0, 2, axis=0), 2, axis=1)
    cb, cr = cb[: y.shape[0], : y.shape[1]], cr[: y.shape[0], : y.shape[1]]
    rgb = np.stack((luma + 1.596 * cr, luma - 0.392 * cb - 0.813 * cr, luma + 2.017 * cb), axis=-1)
    return np.asarray(np.clip(rgb, 0, 255), dtype=np.uint8)


def _fourcc_name(code: int) -> str:
    return "".join(chr((code >> shift) & 0xFF) for shift in (0, 8, 16, 24)).strip()


# --- listing ------------------------------------------------------------------------------

# Nodes that belong to libcamera's pipeline (CSI receivers, ISP, codecs) are not webcams.
_PIPELINE_DRIVERS = frozenset(
    {"unicam", "rp1-cfe", "bcm2835-isp", "pispbe", "bcm2835-codec", "rpivid", "rpi-hevc-dec"}
)


@dataclass(frozen=True, slots=True)
class V4L2Node:
    """A V4L2 capture node found under /dev."""

    path: str
    name: str
    driver: str
    bus_info: str


def list_v4l2_capture_devices(
    dev_dir: str = "/dev",
    sys_dir: str = "/sys/class/video4linux",
    device_factory: Callable[[str], V4L2Device] = KernelV4L2Device,
) -> list[V4L2Node]:
    """Return the video capture nodes, skipping codec, ISP, CSI-receiver and metadata nodes.

    A node that cannot be opened (no permission) is still listed, named from sysfs, with the
    reason as its driver, so ``edge-agent devices`` shows why it cannot be used.
    """
    nodes: list[V4L2Node] = []
    for path in _video_nodes(dev_dir):
        sys_name = _read_text(Path(sys_dir) / Path(path).name / "name")
        try:
            dev = device_factory(path)
        except CameraError as exc:
            nodes.append(V4L2Node(path, sys_name or "?", f"unusable: {exc}", ""))
            continue
        try:
            info = dev.info()
        except CameraError:
            continue  # not a V4L2 node after all
        finally:
            dev.close()
        if info.is_video_capture and info.driver not in _PIPELINE_DRIVERS:
            nodes.append(V4L2Node(path, info.card or sys_name, info.driver, info.bus_info))
    return nodes


def _video_nodes(dev_dir: str) -> Iterator[str]:
    candidates = [p for p in Path(dev_dir).glob("video*") if p.name[5:].isdigit()]
    for node in sorted(candidates, key=lambda p: int(p.name[5:])):
        yield str(node)


def _read_text(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""
