"""Configuration: compose the Hydra configs, validate them once, describe the search space.

Imports ``sweeps.core`` only (and ``ann``'s parameter tables to check values).
"""

from pathlib import Path

#: Where the configs are: ``sweeps/conf``, a symbolic link to the repository's ``conf/`` (groups
#: ``model/``, ``optimizer/``, ``dataset/``, ``training/``, ``tracking/``, ``sweep/`` and the root
#: configs), so that Hydra finds them next to the package in a checkout, an editable install
#: and a built wheel (where setuptools copies the linked files in as package data).
CONFIG_DIR = Path(__file__).resolve().parents[1] / "conf"
