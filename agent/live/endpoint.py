"""What goes on the wire before the WebSocket opens: the URL and the headers, checked first.

A URL that cannot be parsed, or a header value websockets refuses to send (a key file saved with
a byte order mark, a token with a newline), fails the same way on every attempt: it is reported
once as a permanent error that says what to fix, and never quotes the value (a header holds the
credential; a URL may carry ``?key=``).
"""

from __future__ import annotations

from websockets.exceptions import InvalidURI
from websockets.uri import parse_uri

from agent.live.errors import LiveErrorCode, LiveSessionError


def redact_url(url: str) -> str:
    """The URL without its query, fragment and user info: safe for logs and messages."""
    base = url.split("?", 1)[0].split("#", 1)[0]
    scheme, sep, rest = base.partition("://")
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        authority = "...@" + authority.rsplit("@", 1)[1]
    return scheme + sep + authority + slash + path


def check_url(url: str) -> None:
    """Raise a permanent ``LiveSessionError`` unless ``url`` is a WebSocket URL to connect to."""
    shown = redact_url(url)
    try:
        parse_uri(url)
    except InvalidURI as exc:
        reason = exc.msg
    except ValueError as exc:  # urllib's: a port that is not a number, or out of range
        reason = str(exc)
    else:
        bad = next((c for c in url if c.isspace() or not c.isprintable()), None)
        if bad is None:
            return
        reason = f"it holds a space or control character (U+{ord(bad):04X})"
    raise LiveSessionError(
        LiveErrorCode.REQUEST_ERROR,
        f"The Live endpoint {shown!r} is not a valid WebSocket URL: {reason}. "
        "Fix the endpoint in the configuration.",
        permanent=True,
    )


def check_headers(headers: dict[str, str]) -> None:
    """Raise a permanent ``LiveSessionError`` naming the header (never its value) when a value
    holds anything but printable ASCII and tabs."""
    for name, value in headers.items():
        for position, char in enumerate(value):
            if char != "\t" and not " " <= char <= "~":
                what = "a byte order mark" if char == "\ufeff" else (
                    "a control character" if char < " " or char == "\x7f"
                    else "a character that is not ASCII")  # fmt: skip
                raise LiveSessionError(
                    LiveErrorCode.NO_API_KEY,
                    f"The {name} header cannot be sent: the credential holds {what} at "
                    f"position {position}. Save the credential as plain ASCII text.",
                    permanent=True,
                )
