"""The daemon behind `edge-asd run`: `wiring` builds its parts from the config, `loop` runs them."""

from edge_asd.daemon.loop import Daemon
from edge_asd.daemon.wiring import MachineRuntime, load_machines, open_sources

__all__ = ["Daemon", "MachineRuntime", "load_machines", "open_sources"]
