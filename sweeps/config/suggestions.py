""""Did you mean ...?" for a misspelt config key or option (``optimiser`` -> ``optimizer``).

The keys a command line may set are those of the package's configs (``sweeps/conf``):
the root config's groups and keys, and every key of every option of each group (so
``dataset.path`` is known although only ``dataset=csv`` has it). :func:`suggest_key`
corrects a dotted key segment by segment; :func:`closest` picks the nearest word.
"""

from __future__ import annotations

import difflib
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

import yaml

from sweeps.config import CONFIG_DIR

#: How alike a word and its suggestion must be (difflib's ratio).
CUTOFF = 0.7
_GLOBAL_PACKAGE = "@package _global_"


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate nearest to ``word``, if one is near enough (None for ``word`` itself)."""
    found = difflib.get_close_matches(word, sorted(set(candidates)), n=1, cutoff=CUTOFF)
    return found[0] if found and found[0] != word else None


def suggest_key(dotted: str, config_name: str = "config") -> str | None:
    """The known key nearest to ``dotted`` (``model.hiden_layers`` -> ``model.hidden_layers``)."""
    tree: Any = known_keys(config_name)
    corrected = []
    for segment in dotted.split("."):
        if not isinstance(tree, dict) or not tree:
            corrected.append(segment)  # below a free-form value: nothing to check against
            tree = None
            continue
        if segment not in tree:
            segment = closest(segment, tree)
            if segment is None:
                return None
        corrected.append(segment)
        tree = tree[segment]
    suggestion = ".".join(corrected)
    return suggestion if suggestion != dotted else None


@lru_cache(maxsize=None)
def known_keys(config_name: str = "config") -> dict[str, Any]:
    """The tree of keys ``config_name`` (``config`` or ``ann_sweep``) can have; leaves are None."""
    root = _load(CONFIG_DIR / f"{config_name}.yaml")
    groups = [next(iter(entry)) for entry in root.get("defaults", []) if isinstance(entry, dict)]
    tree: dict[str, Any] = {}
    for group in groups:
        for path in sorted((CONFIG_DIR / group).glob("*.yaml")):
            option = _load(path)
            option.pop("defaults", None)
            if _GLOBAL_PACKAGE in path.read_text().split("\n", 1)[0]:
                _merge(tree, option)
            else:
                _merge(tree, {group: option})
    root.pop("defaults", None)
    root.pop("hydra", None)
    _merge(tree, root)
    return tree


def _load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text()) or {}


def _merge(tree: dict[str, Any], values: dict[str, Any]) -> None:
    for key, value in values.items():
        if isinstance(value, dict):
            branch = tree.get(key)
            if not isinstance(branch, dict):
                branch = tree[key] = {}
            _merge(branch, value)
        else:
            tree.setdefault(key, None)
