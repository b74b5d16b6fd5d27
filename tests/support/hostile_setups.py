"""Setup frames the service refuses with 1007, each of a shape that once crashed the emulator
(deep nesting, numbers out of range, unhashable enum values, fields that are not lists)."""

from __future__ import annotations

import json
from typing import Any

MODEL = "models/gemini-live-2.5-flash-preview"


def nested(depth: int) -> Any:
    """``[[[...]]]`` nested ``depth`` levels."""
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


def _setup(**fields: Any) -> str:
    return json.dumps({"setup": {"model": MODEL, **fields}})


def _aad(**fields: Any) -> str:
    return _setup(realtimeInputConfig={"automaticActivityDetection": fields})


def _cwc(trigger: Any = None, target: Any = None) -> str:
    body: dict[str, Any] = {} if trigger is None else {"triggerTokens": trigger}
    if target is not None:
        body["slidingWindow"] = {"targetTokens": target}
    return _setup(contextWindowCompression=body)


HOSTILE_SETUPS: dict[str, str] = {
    # the JSON loader recurses: 100,000 levels is a RecursionError inside json.loads
    "nesting 100000 deep": '{"setup": {"model": "' + MODEL + '", "tools": '
    + "[" * 100_000 + "]" * 100_000 + "}}",
    # deeper than protobuf's JSON parser goes (100): the service refuses it
    "nesting 150 deep": _setup(systemInstruction={"parts": [{"text": "x"}], "x": nested(150)}),
    "prefixPaddingMs 10**400": _aad(prefixPaddingMs=10**400),
    "prefixPaddingMs Infinity": _aad(prefixPaddingMs=float("inf")),
    "prefixPaddingMs negative": _aad(prefixPaddingMs=-5),
    "prefixPaddingMs fractional": _aad(prefixPaddingMs=1.5),
    "prefixPaddingMs boolean": _aad(prefixPaddingMs=True),
    "silenceDurationMs 10**30": _aad(silenceDurationMs=10**30),
    "silenceDurationMs digits": _aad(silenceDurationMs="9" * 40),
    "triggerTokens negative": _cwc(trigger=-1),
    "triggerTokens 10**30": _cwc(trigger=10**30),
    "targetTokens 10**400": _cwc(trigger=100, target=10**400),
    "activityHandling list": _setup(realtimeInputConfig={"activityHandling": []}),
    "startOfSpeechSensitivity object": _aad(startOfSpeechSensitivity={}),
    "endOfSpeechSensitivity list": _aad(endOfSpeechSensitivity=[1]),
    "responseModalities nested list": _setup(generationConfig={"responseModalities": [["AUDIO"]]}),
    "responseModalities object item": _setup(generationConfig={"responseModalities": [{}]}),
    "mediaResolution list": _setup(generationConfig={"mediaResolution": []}),
    "mediaResolution number": _setup(generationConfig={"mediaResolution": 5}),
    "functionDeclarations number": _setup(tools=[{"functionDeclarations": 5}]),
    "functionDeclarations string": _setup(tools=[{"functionDeclarations": "ab"}]),
    "systemInstruction.parts number": _setup(systemInstruction={"parts": 5}),
    "systemInstruction.parts true": _setup(systemInstruction={"parts": True}),
    "systemInstruction.parts string": _setup(systemInstruction={"parts": "be brief"}),
    "systemInstruction.parts object": _setup(systemInstruction={"parts": {"text": "x"}}),
}
"""Name -> the whole first frame."""
