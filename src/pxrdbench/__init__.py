"""pxrdbench: a benchmark suite for deep learning on powder X-ray diffraction (PXRD).

The spine: structure sources -> reflections (cached, wavelength independent) -> views (rendered per batch)
-> encoders -> methods -> tasks -> results files -> leaderboards. See docs/ARCHITECTURE.md.
"""

from pxrdbench.errors import PxrdbenchError

__version__ = "0.1.0"
__all__ = ["PxrdbenchError", "__version__"]
