"""Minting one ephemeral token with google-genai's own ``auth_tokens.create``."""

from __future__ import annotations

import datetime as dt
import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

from google import genai
from google.genai import errors, types

from agent.logs import register_secret
from agent.token_server.settings import Settings

MAX_KEY_BYTES = 8 * 1024

# The method is marked experimental by google-genai; the emulator and the tests hold it to the
# service's behaviour, so the warning on every mint says nothing new.
warnings.filterwarnings("ignore", message="The SDK's token creation implementation is "
                                          "experimental")


class MintError(Exception):
    """The Gemini API did not mint a token; ``status`` is what the device is told."""

    def __init__(self, message: str, status: int = 502) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Minted:
    token: str
    expire_time: dt.datetime
    new_session_expire_time: dt.datetime


class Minter:
    """Holds the API key (read again when its file changes) and a google-genai client."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._seen: tuple[int, int, int] | None = None
        self._client: genai.Client | None = None
        self._client_for_key()

    def _client_for_key(self) -> genai.Client:
        path: Path = self.settings.api_key_file
        with self._lock:
            try:
                st = os.stat(path)
                seen = (st.st_ino, st.st_size, st.st_mtime_ns)
                if seen != self._seen or self._client is None:
                    with path.open("rb") as handle:
                        raw = handle.read(MAX_KEY_BYTES + 1)
                    key = raw.decode("utf-8").strip().removeprefix("\ufeff").strip()
                    if not key or len(raw) > MAX_KEY_BYTES or len(key.split()) != 1:
                        raise ValueError("must hold the API key alone, on one line")
                    register_secret(key)
                    options = types.HttpOptions(api_version="v1alpha",
                                                      base_url=self.settings.api_endpoint)
                    self._client = genai.Client(api_key=key, http_options=options)
                    self._seen = seen
            except (OSError, ValueError) as exc:
                if self._client is None:
                    raise MintError(f"{path}: the API key cannot be read: {exc}", 503) from None
            assert self._client is not None
            return self._client

    def mint(self) -> Minted:
        """One token: ``uses`` sessions, locked to the model and setup, short-lived."""
        client = self._client_for_key()
        now = dt.datetime.now(dt.UTC)
        expire = now + dt.timedelta(seconds=self.settings.expire_s)
        new_session = now + dt.timedelta(seconds=self.settings.new_session_expire_s)
        config = types.CreateAuthTokenConfig(
            uses=self.settings.uses,
            expire_time=expire,
            new_session_expire_time=new_session,
            live_connect_constraints=types.LiveConnectConstraints(
                model=self.settings.model,
                config=types.LiveConnectConfig(
                    response_modalities=[types.Modality(m) for m in
                                         self.settings.response_modalities]),
            ),
            lock_additional_fields=[],
        )
        try:
            token = client.auth_tokens.create(config=config)
        except errors.APIError as exc:
            status = 503 if exc.code in (429,) or (exc.code or 0) >= 500 else 502
            raise MintError(f"the Gemini API refused to mint a token (HTTP {exc.code})",
                            status) from None
        except Exception as exc:  # the network, a TLS failure: the device retries later
            raise MintError(f"the Gemini API could not be reached: {type(exc).__name__}",
                            503) from None
        name = token.name
        if not name:
            raise MintError("the Gemini API answered without a token")
        register_secret(name, slot="token_server.minted")
        return Minted(name, expire, new_session)
