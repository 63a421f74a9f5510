"""The sweep-wide fit view: where in the search space trials over- and underfit.

Built from the leaderboard (:func:`sweeps.study.leaderboard.leaderboard`: one row per trial with its
state, objective, params and ``fit`` label) and the study:

* :func:`label_counts` / :func:`counts_line`: trials per fit label ("19 good, 4 overfit, ...");
* :func:`representatives`: the trials worth comparing side by side -- the best trial of
  every label present, then the best trials overall, up to ``k``;
* :data:`FIT_COLOURS`: the labels' colours in the figures of :mod:`sweeps.study.fit_plots` (the fit
  map and the curve overlay).

No plotting here: the command lines import this module at start-up.

A label is the run's ``fit`` tag (:mod:`sweeps.training.diagnosis`); a pruned trial without one is
``pruned``.
"""

from __future__ import annotations

from typing import Mapping

from sweeps.core import vocabulary as V

#: Colours of the labels in the fit map and the curve overlay.
FIT_COLOURS = {
    "good": "tab:green",
    "overfit": "tab:red",
    "underfit": "tab:orange",
    "unstable": "tab:purple",
    "diverged": "tab:gray",
    V.PRUNED: "lightgray",
}


def labels(board) -> list[str]:
    """Each row's fit label (``""`` for a trial without one: running, failed)."""
    return [fit if isinstance(fit, str) and fit else "" for fit in board["fit"]]


def label_counts(board) -> dict[str, int]:
    """Trials per label, in :data:`sweeps.core.vocabulary.LABEL_ORDER` (labels with no trial left out)."""
    if board is None or board.empty:
        return {}
    found = labels(board)
    return {label: found.count(label) for label in V.LABEL_ORDER if found.count(label)}


def counts_line(counts: Mapping[str, int]) -> str:
    """``19 good, 4 overfit, 3 unstable`` (pruned trials without a label are left out)."""
    return ", ".join(f"{n} {label}" for label, n in counts.items() if label != V.PRUNED)


#: Trials shown beside the best of each label: the best few overall.
TOP_FEW = 3


def representatives(board, k: int) -> list[int]:
    """Row positions of the trials to compare: the best of each label, then the best
    :data:`TOP_FEW` overall, at most ``k`` in all (the best of each label always shown).

    Only trials with a run and a label count; the board is ordered best first, so the first
    row of a label is its best trial.
    """
    if board is None or board.empty:
        return []
    found = labels(board)
    usable = [i for i, (label, run) in enumerate(zip(found, board["run_id"]))
              if label and label != V.PRUNED and isinstance(run, str)]
    chosen: list[int] = []
    for label in V.LABEL_ORDER:
        first = next((i for i in usable if found[i] == label), None)
        if first is not None:
            chosen.append(first)
    limit = min(k, len(chosen) + TOP_FEW)
    for i in usable:
        if len(chosen) >= limit:
            break
        if i not in chosen:
            chosen.append(i)
    return sorted(chosen)
