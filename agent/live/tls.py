"""The TLS context of every ``wss://`` connection: made once, with the CA store looked up lazily.

Python's default context parses the whole CA bundle (about 140 certificates, 2.3 MB of memory)
into every context it makes, and websockets makes one per connection. Where the system keeps
its CAs as a hashed directory (Debian's and Raspberry Pi OS's ``/etc/ssl/certs``, kept by
``update-ca-certificates``), OpenSSL reads only the one CA a server's chain needs, when it
needs it, which also picks up CAs updated while the daemon runs. An explicit
``SSL_CERT_FILE`` is honoured as Python's default does.
"""

from __future__ import annotations

import functools
import os
import ssl

__all__ = ["client_context"]


@functools.cache
def client_context() -> ssl.SSLContext:
    """The shared client context: certificate and host name checked, as Python's default."""
    paths = ssl.get_default_verify_paths()
    if os.environ.get(paths.openssl_cafile_env) or not _hashed_directory(paths.capath):
        return ssl.create_default_context()
    return ssl.create_default_context(capath=paths.capath)


def _hashed_directory(path: str | None) -> bool:
    """Whether ``path`` is a directory of CA certificates named by their subject hash."""
    if not path:
        return False
    try:
        with os.scandir(path) as entries:
            return any(_is_hash_name(entry.name) for entry in entries)
    except OSError:
        return False


def _is_hash_name(name: str) -> bool:
    stem, _, suffix = name.partition(".")
    return len(stem) == 8 and suffix.isdigit() and all(c in "0123456789abcdef" for c in stem)
