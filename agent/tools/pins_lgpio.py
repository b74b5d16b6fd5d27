"""gpiozero's lgpio pins, with outputs claimed at their initial level.

gpiozero's ``LGPIOPin`` has no ``output_with_state`` of its own, so the base class claims the
line as an output (at lgpio's default level, 0) and only then writes the initial value: an
active-low relay or LED, the usual relay board, is switched on for a moment every time the
agent starts. lgpio claims a line at a given level in one call; this pin uses that.

Imported only for the lgpio factory: importing lgpio needs ``LG_WD`` set (see
:mod:`agent.tools.pins`), and the module exists only where lgpio is installed.
"""

from __future__ import annotations

from typing import Any

import lgpio
from gpiozero.pins.lgpio import LGPIOFactory, LGPIOPin


class LevelClaimingLGPIOPin(LGPIOPin):  # type: ignore[misc]  # gpiozero is untyped
    """An ``LGPIOPin`` whose ``output_with_state`` claims the line at that state."""

    _callback: Any  # set by LGPIOPin: the edge-alert callback, or None

    def output_with_state(self, state: Any) -> None:
        if isinstance(state, bool) or state in (0, 1):
            if self._callback is not None:  # as LGPIOPin._set_function does
                self._callback.cancel()
                self._callback = None
            lgpio.gpio_claim_output(self.factory._handle, self._number, int(state))
        else:  # a PWM fraction: gpiozero's own two steps
            super().output_with_state(state)


class LevelClaimingLGPIOFactory(LGPIOFactory):  # type: ignore[misc]
    """``LGPIOFactory`` making :class:`LevelClaimingLGPIOPin` pins."""

    def __init__(self, chip: int | None = None) -> None:
        super().__init__(chip=chip)
        self.pin_class = LevelClaimingLGPIOPin
