"""Fault descriptions from code and from scenario tables."""

from __future__ import annotations

import pytest

from agent.emulator.faults import Fault, FaultKind, Trigger


def test_builders() -> None:
    assert Fault.drop(Trigger.REPLY) == Fault(FaultKind.DROP, Trigger.REPLY)
    assert Fault.close(4000, "x").code == 4000
    assert Fault.refuse_handshake(401).status == 401
    assert Fault.repeat_tool_call().at is Trigger.TOOL_CALL
    # tool faults always fire at the next tool call
    assert Fault(FaultKind.CANCEL_TOOL_CALL).at is Trigger.TOOL_CALL


def test_from_mapping() -> None:
    fault = Fault.from_mapping({"kind": "stall", "seconds": 2, "at": "reply"})
    assert fault == Fault(FaultKind.STALL, Trigger.REPLY, seconds=2.0)
    for bad in (
        {},
        {"kind": "nope"},
        {"kind": "drop", "colour": 1},
        {"kind": "stall", "seconds": "x"},
    ):
        with pytest.raises(ValueError):
            Fault.from_mapping(bad)
