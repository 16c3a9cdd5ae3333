"""The node's parameters at runtime: checked values, the pipeline's settings built from them, and a
set-parameters callback that refuses bad ones.

:class:`Parameters` is a mixin of ``PerceptionNode``; it uses the node's ``values``, ``gate`` (CommandGate) and
``messages`` (OutputMessages). The rules are :func:`~uni_encoder_ros.interface.check_parameters`.
"""

from __future__ import annotations

import array
import dataclasses
from typing import Any

from rcl_interfaces.msg import SetParametersResult

from uni_encoder_core.inference.settings import PipelineConfig
from uni_encoder_ros.interface import PARAMETERS, check_parameter, check_parameters

STOP_PERIOD = 0.08  # s; the gate sends stop commands at most this often (watchdog jitter stays under it)


class Parameters:
    """Checked parameter values of the perception node (see the module docstring)."""

    def param(self, name: str) -> Any:
        """Current (checked) value of a declared parameter."""
        return self.values[name]

    def pipeline_config(self) -> PipelineConfig:
        """The pipeline's typed settings from the node parameters of the same names."""
        values = {f.name: self.param(f.name) for f in dataclasses.fields(PipelineConfig)}
        return PipelineConfig(**{k: list(v) if isinstance(v, array.array) else v for k, v in values.items()})

    def load_parameters(self) -> str | None:
        """Check every declared parameter's value; keep them when valid, else return the reason."""
        try:
            self.values = check_parameters({name: self.get_parameter(name).value for name in PARAMETERS})
        except ValueError as exc:
            return str(exc)
        return None

    def on_set_parameters(self, params: list) -> SetParametersResult:
        """Reject a runtime change that is out of range or of the wrong type, with the reason."""
        proposed = dict(self.values) | {p.name: p.value for p in params if p.name in PARAMETERS}
        try:
            check_parameters(proposed)
        except ValueError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    def on_parameters_set(self, params: list) -> None:
        """Apply accepted values: the gate's limits and the commanded speed change at once."""
        for p in params:
            if p.name in PARAMETERS:
                self.values[p.name] = check_parameter(p.name, p.value)
        self.gate.set_limits(self.param("max_steering_angle"), self.param("max_steering_rate"),
                             self.param("max_input_age"), STOP_PERIOD)
        if self.messages is not None:
            self.messages.speed = self.param("speed")
