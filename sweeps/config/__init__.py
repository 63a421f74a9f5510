"""Configuration: compose the Hydra configs, validate them once, describe the search space.

Imports ``sweeps.core`` only (and ``ann``'s parameter tables to check values).
"""

from pathlib import Path

#: Where the configs are: ``sweeps/conf``, a symlink to the repository's ``conf/`` in a checkout.
CONFIG_DIR = Path(__file__).resolve().parents[1] / "conf"
