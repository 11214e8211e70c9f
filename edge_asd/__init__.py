"""edge-asd: anomalous machine sound detection on the edge.

The runtime (this package) never imports torch; training lives in `train/`.
"""

__version__ = "0.1.0"
