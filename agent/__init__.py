"""edge-agent: a real-time Gemini Live agent for the Raspberry Pi."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("edge-agent")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+source"
