"""The perception node as a child process: started with the shipped parameter file and overrides, stopped like Ctrl-C.

Used by the demo, the node-overhead benchmark and the node tests; the process's output goes to a log file.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def parameter_value(value: Any) -> str:
    """A Python value as a ``-p name:=value`` argument (booleans lower case, lists ``[a,b]``)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ",".join(parameter_value(x) for x in value) + "]"
    return str(value)


def start_node(log: Path, params: dict[str, Any], name: str = "perception_node",
               params_file: Path | None = None) -> subprocess.Popen:
    """Start ``python -m uni_encoder_ros.node`` (node ``name``) with ``config/perception.yaml``, then
    ``params_file`` when given, then ``params``; stdout and stderr to ``log``."""
    cmd = [sys.executable, "-m", "uni_encoder_ros.node", "--ros-args", "-r", f"__node:={name}",
           "--params-file", str(ROOT / "config/perception.yaml")]
    if params_file is not None:
        cmd += ["--params-file", str(params_file)]
    for key, value in params.items():
        cmd += ["-p", f"{key}:={parameter_value(value)}"]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT)


def stop_node(proc: subprocess.Popen, timeout: float = 15.0) -> None:
    """Interrupt (SIGINT, like Ctrl-C) and wait up to ``timeout`` s; kill it if it does not exit."""
    if proc.poll() is None:
        proc.send_signal(subprocess.signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
