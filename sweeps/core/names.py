"""How runs are named and numbers written in names and tables.

``short_number(0.0031)`` -> ``3.1e-3``; ``layers_label([128, 32])`` -> ``128-32``;
``describe_config(cfg)`` -> ``relu 2x64 lr=3e-3 bs=64``: the words of a trial's run name
(``t007 relu 2x64 lr=3e-3 bs=64``, :func:`sweeps.study.objective.run_name`) and of an
``ann-train`` run's (``moons relu 1x32 lr=1e-3 bs=32``); ``refit_line(record, task)``: what
``sweep.refit`` did, as ``ann-sweep`` prints it.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

from sweeps.core.vocabulary import cv_metric


def short_number(value: float) -> str:
    """``0.0031`` -> ``3.1e-3``, ``0.25`` -> ``0.25``, ``64`` -> ``64``."""
    value = float(value)
    if value == 0:
        return "0"
    if 0.01 <= abs(value) < 1000:
        return f"{value:.2g}"
    text = f"{value:.1e}".replace(".0e", "e")
    return re.sub(r"e([+-])0*(\d)", lambda m: "e" + ("-" if m.group(1) == "-" else "") + m.group(2), text)


def layers_label(widths: Sequence[int]) -> str:
    """``[64, 64]`` -> ``2x64``, ``[128, 32]`` -> ``128-32``, ``[]`` -> ``linear``."""
    widths = list(widths)
    if not widths:
        return "linear"
    if len(set(widths)) == 1:
        return f"{len(widths)}x{widths[0]}"
    return "-".join(str(w) for w in widths)


def describe_config(cfg: Mapping[str, Any], searched: Sequence[str] = ()) -> str:
    """A training config in a few words: ``relu 2x64 lr=3e-3 bs=64`` (+ the searched settings
    that are not in every name: optimizer, l2, dropout, epochs)."""
    model, training, optimizer = cfg["model"], cfg["training"], cfg["optimizer"]
    parts = [str(model.get("activation")), layers_label(model.get("hidden_layers") or [])]
    if "optimizer" in searched:
        parts.append(str(optimizer.get("name")))
    parts.append(f"lr={short_number(optimizer.get('lr', 0))}")
    parts.append(f"bs={training.get('batch_size')}")
    if "l2" in searched:
        parts.append(f"l2={short_number(training.get('l2', 0))}")
    if "dropout" in searched:
        parts.append(f"do={short_number(model.get('dropout', 0))}")
    if "epochs" in searched:
        parts.append(f"ep={training.get('epochs')}")
    return " ".join(parts)


def refit_line(record: Mapping[str, Any], task: str) -> str:
    """What ``sweep.refit`` did (:mod:`sweeps.study.refit`), a score a line (a terminal of 100 columns)::

        refit: trial 14 retrained on training + validation rows for 90 epochs, 5 networks averaged:
          accuracy/test 0.9815 (the trial's 0.9741; its folds' accuracy/val 0.983),
          loss/test ...

    (``sweep.ensemble``), or that a Ctrl-C stopped it (``stopped``)."""
    if record.get("stopped"):
        return f"refit: trial {record['trial']}'s refit {record['stopped']}; the champion is the trial's own model"
    scores = ("r2", "rmse") if task == "regression" else ("accuracy", "loss")
    parts = []
    for name in scores:
        key = f"{name}/test"
        if key in record:
            mine = f"{key} {record[key]:.4g}"
            folds = record.get("trial/" + cv_metric(f"{name}/val", "mean"))  # a cross-validated champion's
            if f"trial/{key}" in record:
                mine += f" (the trial's {record[f'trial/{key}']:.4g}" + (
                    f"; its folds' {name}/val {folds:.4g})" if folds is not None else ")")
            parts.append(mine)
    networks = int(record.get("networks", 1))
    return (f"refit: trial {record['trial']} retrained on training + validation rows for {record['epochs']} epochs"
            + (f", {networks} networks averaged" if networks > 1 else "") + (":\n  " + ",\n  ".join(parts) if parts else ""))
