"""``trainwell playground``: TensorFlow Playground's idea, on trainwell's own components, with the doctor watching.

* :mod:`trainwell.playground.knobs`: the knobs (each a config key) and presets;
* :mod:`trainwell.playground.session`: the run in a background thread, and its snapshots;
* :mod:`trainwell.playground.server`: the local server and its JSON endpoints;
* :mod:`trainwell.playground.page`: the page and its script (which draws, and never trains).
"""

from trainwell.playground.server import PlaygroundServer
from trainwell.playground.session import Session

__all__ = ["PlaygroundServer", "Session"]
