"""Picamera2Source against a stand-in with Picamera2's interface, and the real import path.

picamera2 cannot be imported off a Raspberry Pi (its libcamera bindings come only from
Raspberry Pi OS), so the camera object is replaced by ``StandInPicamera2``, which keeps
Picamera2's method names, arguments and YUV420 buffer layout (stride-padded rows, U and V
packed two rows to a stride).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import io
import sys
import types
from typing import Any, ClassVar

import numpy as np
import pytest
import simplejpeg
from structlog.testing import capture_logs

from agent.media.camera import (
    CameraError,
    CameraStream,
    CameraUnavailable,
    JpegFrame,
    YuvFrame,
    list_cameras,
)
from agent.media.camera.picamera2 import (
    PICAMERA2_MISSING,
    Picamera2Source,
    import_picamera2_class,
)


class StandInPicamera2:
    """Picamera2's interface as this layer uses it, with a record of the calls."""

    instances: ClassVar[list[StandInPicamera2]] = []
    fail_init: ClassVar[Exception | None] = None
    align_width_to: ClassVar[int] = 0  # mimic libcamera adjusting the size

    def __init__(self, camera_num: int = 0) -> None:
        if StandInPicamera2.fail_init is not None:
            raise StandInPicamera2.fail_init
        StandInPicamera2.instances.append(self)
        self.camera_num = camera_num
        self.calls: list[str] = []
        self.options: dict[str, Any] = {}
        self.camera_config: dict[str, Any] | None = None
        self.started = False
        self.closed = False
        self.fail_capture: Exception | None = None
        self.frame_index = 0
        self.camera_controls: dict[str, Any] = {"FrameDurationLimits": (33, 1_000_000, 33_333)}

    @staticmethod
    def global_camera_info() -> list[dict[str, Any]]:
        return [
            {"Model": "imx708", "Location": 2, "Rotation": 180, "Id": "/base/soc/i2c0mux/imx708"}
        ]

    def create_still_configuration(
        self,
        main: dict[str, Any] | None = None,
        lores: dict[str, Any] | None = None,
        raw: dict[str, Any] | None = None,
        buffer_count: int = 1,
        controls: dict[str, Any] | None = None,
        **_: Any,
    ) -> dict[str, Any]:
        self.calls.append("create_still_configuration")
        main = {"format": "BGR888", "size": (4608, 2592), **(main or {})}
        return {
            "use_case": "still",
            "main": main,
            "lores": lores,
            "raw": raw,
            "buffer_count": buffer_count,
            "controls": controls or {},
        }

    def configure(self, config: dict[str, Any]) -> None:
        self.calls.append("configure")
        config = dict(config)
        main = dict(config["main"])
        width, height = main["size"]
        if self.align_width_to:
            width -= width % self.align_width_to
        main["size"] = (width, height)
        main["stride"] = -(-width // 64) * 64 + 64  # padded rows, like the ISP's
        config["main"] = main
        self.camera_config = config

    def start(self) -> None:
        assert self.camera_config is not None, "start before configure"
        self.calls.append("start")
        self.started = True

    def _planes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        assert self.camera_config is not None
        width, height = self.camera_config["main"]["size"]
        shade = (40 + 20 * self.frame_index) % 256
        y = np.full((height, width), shade, dtype=np.uint8)
        y[: height // 2] = 200  # a bright top half: the orientation survives encoding
        u = np.full((height // 2, width // 2), 90, dtype=np.uint8)
        v = np.full((height // 2, width // 2), 170, dtype=np.uint8)
        return y, u, v

    def capture_array(self, name: str = "main") -> np.ndarray:
        self.calls.append(f"capture_array:{name}")
        if not self.started:
            raise RuntimeError("Camera not running")
        if self.fail_capture is not None:
            raise self.fail_capture
        assert self.camera_config is not None
        stride = self.camera_config["main"]["stride"]
        y, u, v = self._planes()
        height, width = y.shape
        buffer = np.full((height * 3 // 2, stride), 7, dtype=np.uint8)  # 7: padding bytes
        buffer[:height, :width] = y
        chroma = buffer.reshape(height * 3, stride // 2)
        chroma[2 * height : 2 * height + height // 2, : width // 2] = u
        chroma[2 * height + height // 2 :, : width // 2] = v
        self.frame_index += 1
        return buffer

    def capture_file(self, file_output: io.BytesIO, name: str = "main", format: str = "") -> None:
        self.calls.append(f"capture_file:{format}")
        y, u, v = self._planes()
        quality = self.options.get("quality", 90)
        file_output.write(simplejpeg.encode_jpeg_yuv_planes(y, u, v, quality))

    def stop(self) -> None:
        self.calls.append("stop")
        self.started = False

    def close(self) -> None:
        self.calls.append("close")
        self.closed = True


@pytest.fixture(autouse=True)
def _reset_stand_in() -> None:
    StandInPicamera2.instances = []
    StandInPicamera2.fail_init = None
    StandInPicamera2.align_width_to = 0


def test_configures_the_isp_at_the_requested_size_in_yuv420() -> None:
    source = Picamera2Source(camera_num=1, frame_rate=5.0, picamera2_class=StandInPicamera2)
    source.open(768, 576)
    camera = StandInPicamera2.instances[0]
    assert camera.camera_num == 1
    assert camera.calls == ["create_still_configuration", "configure", "start"]
    config = camera.camera_config
    assert config is not None
    assert config["main"]["size"] == (768, 576)  # not the sensor's 4608x2592
    assert config["main"]["format"] == "YUV420"
    assert config["raw"] is None
    assert config["controls"] == {"FrameDurationLimits": (200_000, 200_000)}  # no AfMode


def test_continuous_autofocus_on_a_camera_that_has_it() -> None:
    class CameraModule3(StandInPicamera2):
        def __init__(self, camera_num: int = 0) -> None:
            super().__init__(camera_num)
            self.camera_controls["AfMode"] = (0, 2, 0)

    Picamera2Source(picamera2_class=CameraModule3).open(768, 432)
    config = StandInPicamera2.instances[0].camera_config
    assert config is not None and config["controls"]["AfMode"] == 2  # Continuous
    Picamera2Source(picamera2_class=CameraModule3, autofocus=False).open(768, 432)
    config = StandInPicamera2.instances[1].camera_config
    assert config is not None and "AfMode" not in config["controls"]


def test_capture_returns_the_planes_without_padding() -> None:
    source = Picamera2Source(picamera2_class=StandInPicamera2)
    source.open(768, 576)
    frame = source.capture()
    assert isinstance(frame, YuvFrame)
    assert frame.y.shape == (576, 768) and frame.u.shape == frame.v.shape == (288, 384)
    assert np.all(frame.y[:288] == 200) and np.all(frame.y[288:] == 40)
    assert np.all(frame.u == 90) and np.all(frame.v == 170)  # no padding byte (7) leaked


async def test_stream_from_the_pi_camera_gives_jpeg_of_the_size_and_colour() -> None:
    source = Picamera2Source(picamera2_class=StandInPicamera2)
    stream = CameraStream(source, width=768, height=576, interval_s=0.01)
    frames: list[bytes] = []
    async with contextlib.aclosing(stream.frames()) as iterator:
        async for jpeg in iterator:
            frames.append(jpeg)
            if len(frames) == 3:
                break
    await stream.aclose()
    for jpeg in frames:
        image = simplejpeg.decode_jpeg(jpeg)
        assert image.shape == (576, 768, 3)
    top, bottom = simplejpeg.decode_jpeg(frames[0], colorspace="GRAY")[[10, 500], 10, 0]
    assert abs(int(top) - 200) <= 3 and abs(int(bottom) - 40) <= 3
    camera = StandInPicamera2.instances[0]
    assert camera.calls[-2:] == ["stop", "close"]  # released when the consumer stopped


def test_zero_copy_option_lets_picamera2_encode_at_our_quality() -> None:
    source = Picamera2Source(encode_in_picamera2=True, quality=55, picamera2_class=StandInPicamera2)
    source.open(640, 480)
    frame = source.capture()
    camera = StandInPicamera2.instances[0]
    assert isinstance(frame, JpegFrame) and (frame.width, frame.height) == (640, 480)
    assert camera.options["quality"] == 55
    assert "capture_file:jpeg" in camera.calls


def test_a_size_adjusted_by_libcamera_is_logged_and_used() -> None:
    StandInPicamera2.align_width_to = 64
    source = Picamera2Source(picamera2_class=StandInPicamera2)
    with capture_logs() as logs:
        source.open(700, 480)
    assert logs[0]["event"] == "camera.size_adjusted" and logs[0]["configured"] == "640x480"
    frame = source.capture()
    assert isinstance(frame, YuvFrame) and (frame.width, frame.height) == (640, 480)


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError("Camera __init__ sequence did not complete."),  # no camera, or busy
        IndexError("list index out of range"),  # camera_num that does not exist
    ],
)
def test_a_missing_or_busy_camera_is_unavailable(error: Exception) -> None:
    StandInPicamera2.fail_init = error
    with pytest.raises(CameraUnavailable, match="cannot open Pi camera 0"):
        Picamera2Source(picamera2_class=StandInPicamera2).open(768, 576)


def test_a_failed_configure_closes_the_camera() -> None:
    class BadConfig(StandInPicamera2):
        def configure(self, config: dict[str, Any]) -> None:
            raise RuntimeError("Invalid camera configuration")

    with pytest.raises(CameraUnavailable, match="Invalid camera configuration"):
        Picamera2Source(picamera2_class=BadConfig).open(768, 576)
    assert StandInPicamera2.instances[0].closed


def test_capture_faults_become_camera_errors() -> None:
    source = Picamera2Source(picamera2_class=StandInPicamera2)
    with pytest.raises(CameraError, match="not open"):
        source.capture()
    source.open(64, 48)
    StandInPicamera2.instances[0].fail_capture = RuntimeError("dequeue timed out")
    with pytest.raises(CameraError, match="dequeue timed out"):
        source.capture()


async def test_stream_recovers_when_the_camera_fails_mid_run() -> None:
    source = Picamera2Source(picamera2_class=StandInPicamera2)
    stream = CameraStream(source, width=64, height=48, interval_s=0.01, retry_initial_s=0.01)
    frames: list[bytes] = []

    async def consume() -> None:
        async with contextlib.aclosing(stream.frames()) as iterator:
            async for jpeg in iterator:
                frames.append(jpeg)
                if len(frames) == 1:  # the camera dies after the first frame
                    StandInPicamera2.instances[0].fail_capture = RuntimeError("ISP hung")
                if len(frames) == 2:
                    return

    await asyncio.wait_for(consume(), 5.0)
    await stream.aclose()
    assert stream.failures == 1
    first, second = StandInPicamera2.instances
    assert first.closed and not second.fail_capture  # the dead one closed, a new one used
    assert second.closed


def test_close_is_safe_twice_and_before_open() -> None:
    source = Picamera2Source(picamera2_class=StandInPicamera2)
    source.close()
    source.open(64, 48)
    source.close()
    source.close()
    assert StandInPicamera2.instances[0].calls[-2:] == ["stop", "close"]


def test_bad_planes_are_refused() -> None:
    class Wrong(StandInPicamera2):
        def capture_array(self, name: str = "main") -> np.ndarray:
            return np.zeros((48, 64, 3), dtype=np.uint8)  # RGB888, not the YUV420 we asked

    source = Picamera2Source(picamera2_class=Wrong)
    source.open(64, 48)
    with pytest.raises(CameraError, match="expected YUV420 of 64x48"):
        source.capture()


# --- the real import path -----------------------------------------------------------------


@pytest.mark.skipif(
    importlib.util.find_spec("picamera2") is not None, reason="picamera2 is installed here"
)
def test_real_import_without_picamera2_says_how_to_install_it() -> None:
    source = Picamera2Source()  # no stand-in: the real lazy import runs
    with pytest.raises(CameraUnavailable) as raised:
        source.open(768, 576)
    message = str(raised.value)
    assert message.startswith("picamera2 is not installed: apt install python3-picamera2")
    assert "--system-site-packages" in message


def test_import_failure_inside_picamera2_is_reported_the_same_way(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # pip's picamera2 off a Pi imports, then fails on "import libcamera". A None entry in
    # sys.modules makes the real import machinery raise ImportError the same way.
    monkeypatch.setitem(sys.modules, "picamera2", None)
    with pytest.raises(CameraUnavailable, match=PICAMERA2_MISSING.split(":")[0]):
        import_picamera2_class()
    assert list_cameras(dev_dir="/nonexistent") == []


def test_an_installed_picamera2_is_found_by_the_lazy_import(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = types.ModuleType("picamera2")
    module.Picamera2 = StandInPicamera2  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "picamera2", module)
    source = Picamera2Source()
    source.open(64, 48)
    assert isinstance(source.capture(), YuvFrame)
    source.close()
    cameras = list_cameras(dev_dir="/nonexistent")
    assert [(c.kind, c.id, c.name) for c in cameras] == [("picamera2", "0", "imx708")]
    assert "location 2" in cameras[0].detail and "rotation 180" in cameras[0].detail
