"""The non-finite guard: a step whose loss or gradient is not finite leaves the weights and the optimizer alone.

The loop asks :meth:`NonFiniteGuard.check` after the backward pass; a skipped step is counted and reported, and
``limit`` skipped steps in a row raise :class:`TrainingDiverged` (the last checkpoint still holds finite weights).
Under fp16 a non-finite gradient with a finite loss is the gradient scaler's business (it skips the update and
lowers the scale), so it is neither counted nor skipped here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


class TrainingDiverged(RuntimeError):
    """Too many non-finite steps in a row."""


@dataclass
class NonFiniteGuard:
    """Counts consecutive non-finite steps; ``skipped`` lists ``(step, reason)`` of every skipped step."""

    limit: int = 3
    scaler_handles_gradients: bool = False
    streak: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)

    def check(self, step: int, loss: float, grad_norm: float) -> str | None:
        """None when the step may update the weights, else the reason it is skipped.

        Raises :class:`TrainingDiverged` on the ``limit``-th skipped step in a row.
        """
        reason = None
        if not math.isfinite(loss):
            reason = f"non-finite loss {loss}"
        elif not math.isfinite(grad_norm) and not self.scaler_handles_gradients:
            reason = f"non-finite gradient norm {grad_norm}"
        if reason is None:
            self.streak = 0
            return None
        self.streak += 1
        self.skipped.append((step, reason))
        if self.streak >= self.limit:
            raise TrainingDiverged(f"step {step}: {self.streak} non-finite steps in a row (last: {reason}); stopped. "
                                   "The last checkpoint holds the last finite weights; lower the learning rate or "
                                   "check the data.")
        return reason
