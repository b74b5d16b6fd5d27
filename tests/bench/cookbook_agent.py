"""The agent a user writes from Google's Live API cookbook, as the tight-loop baseline.

Shaped like the cookbook's ``Get_started_LiveAPI.py``: google-genai's ``live.connect``,
PyAudio capture at 16 kHz mono from the default input (an ALSA plug over the I2S device on a
Pi), 1024-frame reads in ``asyncio.to_thread``, a queue of five, one image a second through
Pillow's ``thumbnail([1024, 1024])`` to JPEG, and PyAudio playback at 24 kHz from a queue the
receiver fills. The images come from a folder (the cookbook's camera mode reads OpenCV frames;
the same Pillow path follows). Run as ``python cookbook_agent.py URL CA_FILE IMAGE_DIR DEVICE``.
"""

from __future__ import annotations

import asyncio
import io
import os
import ssl
import sys
from pathlib import Path

import pyaudio
from google import genai
from google.genai import types
from PIL import Image

FORMAT = pyaudio.paInt16
CHANNELS = 1
SEND_SAMPLE_RATE = 16000
RECEIVE_SAMPLE_RATE = 24000
CHUNK_SIZE = 1024
MODEL = "models/gemini-live-2.5-flash-preview"
CONFIG = types.LiveConnectConfig(response_modalities=[types.Modality.AUDIO])


class CookbookAgent:
    def __init__(self, client: genai.Client, images: list[Path], device: str) -> None:
        self.client = client
        self.images = images
        self.device = device
        self.pya = pyaudio.PyAudio()
        self.out_queue: asyncio.Queue[types.Blob] = asyncio.Queue(maxsize=5)
        self.audio_in_queue: asyncio.Queue[bytes] = asyncio.Queue()

    def _device_index(self) -> int:
        for index in range(self.pya.get_device_count()):
            if self.pya.get_device_info_by_index(index)["name"] == self.device:
                return index
        raise SystemExit(f"no input device {self.device}")

    async def listen_audio(self) -> None:
        stream = await asyncio.to_thread(
            self.pya.open,
            format=FORMAT,
            channels=CHANNELS,
            rate=SEND_SAMPLE_RATE,
            input=True,
            input_device_index=self._device_index(),
            frames_per_buffer=CHUNK_SIZE,
        )
        while True:
            data = await asyncio.to_thread(stream.read, CHUNK_SIZE, exception_on_overflow=False)
            await self.out_queue.put(types.Blob(data=data, mime_type="audio/pcm"))

    def _frame(self, path: Path) -> types.Blob:
        image = Image.open(path)
        image.thumbnail((1024, 1024))
        out = io.BytesIO()
        image.convert("RGB").save(out, format="jpeg")
        return types.Blob(data=out.getvalue(), mime_type="image/jpeg")

    async def get_frames(self) -> None:
        index = 0
        while True:
            frame = await asyncio.to_thread(self._frame, self.images[index % len(self.images)])
            index += 1
            await asyncio.sleep(1.0)
            await self.out_queue.put(frame)

    async def send_realtime(self, session: genai.live.AsyncSession) -> None:
        while True:
            blob = await self.out_queue.get()
            if blob.mime_type == "image/jpeg":
                await session.send_realtime_input(video=blob)
            else:
                await session.send_realtime_input(audio=blob)

    async def receive_audio(self, session: genai.live.AsyncSession) -> None:
        while True:
            async for response in session.receive():
                if data := response.data:
                    self.audio_in_queue.put_nowait(data)
            # The turn is over (or interrupted): drop what has not been played.
            while not self.audio_in_queue.empty():
                self.audio_in_queue.get_nowait()

    async def play_audio(self) -> None:
        stream = await asyncio.to_thread(
            self.pya.open, format=FORMAT, channels=CHANNELS, rate=RECEIVE_SAMPLE_RATE, output=True
        )
        while True:
            data = await self.audio_in_queue.get()
            await asyncio.to_thread(stream.write, data)

    async def run(self) -> None:
        async with self.client.aio.live.connect(model=MODEL, config=CONFIG) as session:
            print("connected", flush=True)
            async with asyncio.TaskGroup() as group:
                group.create_task(self.send_realtime(session))
                group.create_task(self.listen_audio())
                group.create_task(self.get_frames())
                group.create_task(self.receive_audio(session))
                group.create_task(self.play_audio())


def main() -> None:
    url, ca_file, image_dir, device = sys.argv[1:5]
    trust = ssl.create_default_context()  # the system's CAs, as in production ...
    trust.load_verify_locations(cafile=ca_file)  # ... and the emulator's
    client = genai.Client(
        api_key=os.environ["GEMINI_API_KEY"],
        http_options=types.HttpOptions(
            base_url=url,
            api_version="v1beta",
            async_client_args={"ssl": trust},
        ),
    )
    images = sorted(Path(image_dir).glob("*.jpg"))
    asyncio.run(CookbookAgent(client, images, device).run())


if __name__ == "__main__":
    main()
