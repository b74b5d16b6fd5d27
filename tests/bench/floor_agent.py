"""The daemon's work done by its libraries alone: the floor under the tight loop.

What ``edge-agent run`` does in the tight-loop bench, in the fewest lines those libraries allow
and nothing of edge-agent: PyAudio reads the raw I2S device (48 kHz, 2 ch, S32) in 40 ms
blocks in a thread, numpy takes the left slot and applies the mic's gain, soxr's streaming
resampler brings it to 16 kHz and int16, ``call_soon_threadsafe`` hands each chunk to a uvloop
event loop, which sends it as a ``realtimeInput`` JSON frame (base64) over websockets and TLS;
once a second a thread reads the next photo, simplejpeg decodes it, numpy crops and scales it
(nearest neighbour) to 768x576 and simplejpeg encodes it (4:2:0); replies' audio is base64
decoded and written to PyAudio at 24 kHz in a thread. No reconnection, no checks, no logging,
no tools: what is left of the daemon's CPU above this agent's is edge-agent's own.
Run as ``python floor_agent.py URL IMAGE_DIR`` (the API key in ``GEMINI_API_KEY``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import queue
import ssl
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyaudio
import simplejpeg
import soxr
import uvloop
import websockets
from setproctitle import setthreadtitle

PATH = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
MODEL = "models/gemini-live-2.5-flash-preview"
BLOCK = 1920  # 40 ms at 48 kHz
WIDTH, HEIGHT = 768, 576
GAIN = 10 ** (30 / 20) / 2**31  # the inmp441 profile: +30 dB, full scale of the 32-bit slot


def device_index(pya: pyaudio.PyAudio, name: str) -> int:
    for index in range(pya.get_device_count()):
        if pya.get_device_info_by_index(index)["name"] == name:
            return index
    raise SystemExit(f"no device {name}")


def capture(
    pya: pyaudio.PyAudio, loop: asyncio.AbstractEventLoop, out: asyncio.Queue[bytes]
) -> None:
    stream = pya.open(
        format=pyaudio.paInt32, channels=2, rate=48_000, input=True,
        input_device_index=device_index(pya, "vmic"), frames_per_buffer=BLOCK,
    )
    resampler = soxr.ResampleStream(48_000, 16_000, 1, dtype="float32")
    while True:
        raw = stream.read(BLOCK, exception_on_overflow=False)
        left = np.frombuffer(raw, dtype="<i4")[0::2].astype(np.float32) * GAIN
        pcm = resampler.resample_chunk(left)
        chunk = (np.clip(pcm, -1.0, 1.0) * 32767).astype("<i2").tobytes()
        loop.call_soon_threadsafe(out.put_nowait, chunk)


def frames(images: list[Path], loop: asyncio.AbstractEventLoop, out: asyncio.Queue[bytes]) -> None:
    index = 0
    while True:
        image = simplejpeg.decode_jpeg(
            images[index % len(images)].read_bytes(), fastdct=True, fastupsample=True
        )
        index += 1
        height, width, _ = image.shape
        crop = min(width, height * WIDTH // HEIGHT)
        left = (width - crop) // 2
        rows = np.arange(HEIGHT) * height // HEIGHT
        cols = left + np.arange(WIDTH) * crop // WIDTH
        fitted = image[rows[:, None], cols]
        jpeg = simplejpeg.encode_jpeg(fitted, quality=80, colorsubsampling="420")
        loop.call_soon_threadsafe(out.put_nowait, jpeg)
        time.sleep(1.0)


def play(pya: pyaudio.PyAudio, replies: queue.Queue[bytes]) -> None:
    stream = pya.open(
        format=pyaudio.paInt16, channels=1, rate=24_000, output=True,
        output_device_index=device_index(pya, "vspk"),
    )
    while True:
        stream.write(replies.get())


def named(name: str, target: Callable[..., None], *args: object) -> None:
    setthreadtitle(name)  # the daemon's thread names, so the bench can set them side by side
    target(*args)


def realtime(kind: str, mime: str, data: bytes) -> str:
    blob = {"mimeType": mime, "data": base64.b64encode(data).decode()}
    return json.dumps({"realtimeInput": {kind: blob}})


async def run(url: str, images: list[Path]) -> None:
    loop = asyncio.get_running_loop()
    pya = pyaudio.PyAudio()
    audio: asyncio.Queue[bytes] = asyncio.Queue()
    video: asyncio.Queue[bytes] = asyncio.Queue()
    replies: queue.Queue[bytes] = queue.Queue()
    async with websockets.connect(
        url + PATH,
        ssl=ssl.create_default_context(),
        additional_headers={"x-goog-api-key": os.environ["GEMINI_API_KEY"]},
        compression=None,
    ) as ws:
        setup = {"model": MODEL, "generationConfig": {"responseModalities": ["AUDIO"]}}
        await ws.send(json.dumps({"setup": setup}))
        await ws.recv()  # setupComplete
        print("connected", flush=True)
        for name, target, args in (
            ("audio-capture", capture, (pya, loop, audio)),
            ("camera", frames, (images, loop, video)),
            ("audio-playback", play, (pya, replies)),
        ):
            threading.Thread(target=named, args=(name, target, *args), daemon=True).start()

        async def send(source: asyncio.Queue[bytes], kind: str, mime: str) -> None:
            while True:
                await ws.send(realtime(kind, mime, await source.get()))

        async def receive() -> None:
            async for message in ws:
                content = json.loads(message).get("serverContent", {})
                for part in content.get("modelTurn", {}).get("parts", []):
                    if "inlineData" in part:
                        replies.put(base64.b64decode(part["inlineData"]["data"]))

        async with asyncio.TaskGroup() as group:
            group.create_task(send(audio, "audio", "audio/pcm;rate=16000"))
            group.create_task(send(video, "video", "image/jpeg"))
            group.create_task(receive())


def main() -> None:
    url, image_dir = sys.argv[1:3]
    images = sorted(Path(image_dir).glob("*.jpg"))
    uvloop.run(run(url, images))


if __name__ == "__main__":
    main()
