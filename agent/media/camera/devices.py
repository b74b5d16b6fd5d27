"""The cameras on this machine, as ``edge-agent devices`` lists them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CameraInfo:
    """One camera found on this machine, as ``edge-agent devices`` prints it.

    ``kind`` and ``id`` are what goes in the config: ``source = kind`` and
    ``camera_num = id`` (picamera2) or ``device = id`` (v4l2).
    """

    kind: str
    id: str
    name: str
    detail: str = ""


def list_cameras(
    dev_dir: str = "/dev", sys_dir: str = "/sys/class/video4linux"
) -> list[CameraInfo]:
    """List Pi cameras (through libcamera, when picamera2 is installed) and USB webcams."""
    from agent.media.camera.picamera2 import picamera2_camera_info
    from agent.media.camera.v4l2 import list_v4l2_capture_devices

    cameras: list[CameraInfo] = []
    for number, info in enumerate(picamera2_camera_info()):
        detail = ", ".join(
            f"{key.lower()} {info[key]}" for key in ("Location", "Rotation") if key in info
        )
        cameras.append(
            CameraInfo(
                kind="picamera2",
                id=str(info.get("Num", number)),
                name=str(info.get("Model", "unknown")),
                detail=f"{info.get('Id', '')} {detail}".strip(),
            )
        )
    for node in list_v4l2_capture_devices(dev_dir, sys_dir):
        cameras.append(
            CameraInfo(
                kind="v4l2",
                id=node.path,
                name=node.name,
                detail=" ".join(part for part in (node.driver, node.bus_info) if part),
            )
        )
    return cameras
