"""edge-agent: a real-time Gemini Live agent for the Raspberry Pi."""

__version__ = "0.1.0"
