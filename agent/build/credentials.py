"""From ``[live.credentials]`` to the credentials a backend sends, kept fresh.

``source = "key"``: the key found by `agent.config.find_api_key`; when it came from a file
(``api_key_file`` or the systemd credential), the file is looked at before each connection and
read again when it changed, so a rotated key is used from the next connection on, without a
restart. ``"google"``: Vertex access tokens from google-auth. ``"token-server"``: one
ephemeral token per connection from the owner's token server. Firebase's App Check and Auth
tokens come on top of the key. Every value a provider hands out is registered with the log
redaction under the provider's slot.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

import structlog

from agent.config import AgentConfig, ConfigError
from agent.config.credentials import read_secret_file
from agent.config.problems import KeyPath
from agent.live.credentials import Credential, CredentialProvider, KeptCredential
from agent.live.errors import LiveErrorCode, LiveSessionError
from agent.live.model import Secret
from agent.logs import register_secret

log = structlog.get_logger(__name__)


class SecretFile:
    """A key or secret file, read again only when its inode, size or mtime changed."""

    def __init__(self, path: Path, key_path: KeyPath, what: str = "key file", *,
                 check_mode: bool = True) -> None:
        self.path = path
        self.key_path = key_path
        self.what = what
        self.check_mode = check_mode
        self._seen: tuple[int, int, int] | None = None
        self._value: str | None = None

    def read(self) -> str:
        """The secret; the last good one when the file has become unreadable (a rotation in
        progress). Blocking. Raises a permanent ``LiveSessionError`` when there never was one."""
        try:
            st = os.stat(self.path)
            seen = (st.st_ino, st.st_size, st.st_mtime_ns)
            if seen != self._seen or self._value is None:
                value = read_secret_file(self.path, self.key_path, what=self.what,
                                         check_mode=self.check_mode)
                if self._value is not None and value != self._value:
                    log.info("credential.rotated", path=str(self.path))
                self._seen, self._value = seen, value
        except (OSError, ConfigError) as exc:
            if self._value is None:
                reason = str(exc) if isinstance(exc, ConfigError) else (
                    f"{self.path}: {exc.strerror}")
                raise LiveSessionError(
                    LiveErrorCode.NO_API_KEY, f"The {self.what} cannot be used: {reason}",
                    permanent=True,
                ) from None
            log.warning("credential.file_unreadable", path=str(self.path),
                        kept="the last key read")
        return self._value


@dataclass
class KeyFileProvider:
    """A key from a file that may be replaced while the agent runs."""

    file: SecretFile

    @property
    def describe(self) -> str:
        return f"the {self.file.what} {self.file.path}"

    @property
    def refreshable(self) -> bool:
        return True

    async def fetch(self) -> Credential:
        value = await asyncio.to_thread(self.file.read)
        return Credential(value, per_connection=True)


@dataclass(frozen=True)
class LiveCredentials:
    """What a backend is built with: its key or token, and Firebase's App Check and Auth."""

    primary: Secret
    app_check: Secret | None = None
    auth: Secret | None = None


def keep(provider: CredentialProvider, config: AgentConfig, slot: str) -> KeptCredential:
    """A provider kept fresh, every value it gives registered for redaction under ``slot``."""
    return KeptCredential(
        provider,
        refresh_ahead_s=config.live.credentials.refresh_ahead_s,
        on_new=lambda value: register_secret(value, slot=slot),
    )


def live_credentials(config: AgentConfig, key: str, key_file: Path | None) -> LiveCredentials:
    """The credentials of ``config``'s backend. ``key`` and ``key_file`` are what
    `agent.config.find_api_key` found (for ``source = "key"``)."""
    creds = config.live.credentials
    primary: Secret = key
    if creds.source == "key" and key_file is not None:
        if key_file == creds.api_key_file:
            file = SecretFile(key_file, ("live", "credentials", "api_key_file"))
        else:  # the systemd credential: its mode is systemd's (0400, or 0440 from 257 on)
            file = SecretFile(key_file, ("live", "credentials", "credential"),
                              check_mode=False)
        primary = keep(KeyFileProvider(file), config, "live.key")
    elif creds.source == "google":
        from agent.live.vertex_auth import GoogleAuthProvider

        primary = keep(GoogleAuthProvider(creds.service_account_file), config, "live.vertex")
    elif creds.source == "token-server":
        primary = keep(_token_server(config), config, "live.ephemeral")
    app_check: KeptCredential | None = None
    auth: KeptCredential | None = None
    if creds.app_check_url is not None or creds.app_check_command is not None:
        from agent.live.firebase_tokens import AppCheckProvider

        app_check = keep(AppCheckProvider(url=creds.app_check_url,
                                          command=creds.app_check_command),
                         config, "live.app_check")
    if creds.firebase_auth is not None:
        auth = keep(_firebase_auth(config, primary), config, "live.firebase_id")
    return LiveCredentials(primary, app_check, auth)


def _firebase_auth(config: AgentConfig, api_key: Secret) -> CredentialProvider:
    from agent.live.firebase_tokens import FirebaseAuthProvider

    creds = config.live.credentials
    custom = None
    if creds.firebase_auth == "custom-token":
        assert creds.custom_token_file is not None  # config checked
        custom = SecretFile(creds.custom_token_file,
                            ("live", "credentials", "custom_token_file"),
                            what="custom token file").read
    key = api_key if callable(api_key) else (lambda: api_key)
    return FirebaseAuthProvider(key, custom_token=custom,
                                on_secret=lambda v: register_secret(v, slot="live.refresh"))


def _token_server(config: AgentConfig) -> CredentialProvider:
    from agent.live.token_client import TokenServerProvider

    creds = config.live.credentials
    assert creds.token_url and creds.device_id and creds.device_secret_file  # config checked
    file = SecretFile(creds.device_secret_file, ("live", "credentials", "device_secret_file"),
                      what="device secret file")

    def secret() -> str:
        value = file.read()
        register_secret(value, slot="live.device_secret")
        return value

    return TokenServerProvider(creds.token_url, creds.device_id, secret,
                               secret_file=creds.device_secret_file,
                               ca_file=creds.token_ca_file)
