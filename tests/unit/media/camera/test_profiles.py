"""The camera profiles in hardware/cameras build a working source and stream."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from agent.media.camera import SOURCES, CameraStream, make_frame_source

PROFILES = sorted((Path(__file__).parents[4] / "hardware" / "cameras").glob("*.toml"))
SOURCE_KEYS = {"camera_num", "device", "path"}
STREAM_KEYS = {"width", "height", "interval_s", "quality"}


def test_the_three_profiles_are_there() -> None:
    names = {p.stem for p in PROFILES}
    assert {"camera-module-2", "camera-module-3", "usb-webcam"} <= names


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.stem)
def test_profile_builds_a_source_and_a_stream(path: Path) -> None:
    profile = tomllib.loads(path.read_text())
    assert profile["name"] == path.stem and profile["description"]
    camera = profile["camera"]
    assert set(camera) <= {"enabled", "source"} | SOURCE_KEYS | STREAM_KEYS
    assert camera["source"] in SOURCES
    assert max(camera["width"], camera["height"]) <= 768  # the Live API's frame size
    source = make_frame_source(
        camera["source"], **{k: v for k, v in camera.items() if k in SOURCE_KEYS}
    )
    stream = CameraStream(source, **{k: v for k, v in camera.items() if k in STREAM_KEYS})
    assert (stream.width, stream.height) == (camera["width"], camera["height"])
    # Every profile explains its boot config and permissions.
    text = path.read_text()
    assert "Boot config" in text and "video` group" in text
