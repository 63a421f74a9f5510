"""``ann-replay RUN_ID`` (or ``ann-train --replay RUN_ID``): train a logged run again and
check that it reproduces, bit for bit.

    ann-replay 3f2a...                          # the run in ./mlflow.db (or MLFLOW_TRACKING_URI)
    ann-replay 3f2a... tracking.uri=http://127.0.0.1:5000
    ann-replay 3f2a... optimizer.lr=0.01        # a deliberate change: reported as a difference

The run's resolved config (its ``config/config.yaml`` artifact: every key, the seed
included) is trained again, with the overrides given after the run id, as a new run in
the same experiment, named ``replay of <name>`` and tagged ``replay.of=<run id>``. Then
every per-epoch metric of the new run (``loss/train``, ``loss/val``, ``accuracy/val``,
...; not the timings) is compared with the original's, value by value, as 64-bit floats.

The verdict is printed and tagged on the new run (``replay.identical``,
``replay.first_difference``); when the runs differ, the first difference (the earliest
epoch, the metric, both values) and the package versions or git commit that changed
since the original run are named. A sweep's trial replays the same way (its config is
the trial's); a pruned or killed original is compared over the epochs it ran.

Exit status: 0 the replay reproduces the run, 3 it does not, 2 a mistake (an unknown run
id or key, one line on stderr), 1 the tracking store failed, 130/143 interrupted.
"""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

import ann
from sweeps.cli.common import EXIT_USAGE, exit_stopped, fail
from sweeps.config.suggestions import suggest_key
from sweeps.core import vocabulary as V
from sweeps.core.errors import ConfigError, UserError, one_line
from sweeps.core.mlflow_env import quiet_mlflow
from sweeps.core.redaction import redact
from sweeps.tracking.links import run_url
from sweeps.tracking.reproducibility import reproducibility_tags

PROG = "ann-replay"
EXIT_DIFFERENT = 3
DEFAULT_URI = "sqlite:///mlflow.db"
#: Per-epoch metrics that are not compared (wall time differs from run to run).
NOT_COMPARED = (V.TIME_PREFIX,)


@dataclass
class Comparison:
    """How a replay's per-epoch metrics compare with the original's."""

    metrics: list[str]
    epochs: int
    first_difference: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return self.first_difference is None


def compare_histories(original: Mapping[str, Sequence[float]], replay: Mapping[str, Sequence[float]],
                      stopped_early: bool = False) -> Comparison:
    """Compare per-epoch values bit for bit (``float.hex``: ``-0.0 != 0.0``, NaN equals NaN).

    ``stopped_early``: the original was pruned or killed: only its epochs are compared.
    The first difference is the earliest epoch at which any metric differs (metrics in
    the order of ``replay``), or a metric one of the runs does not have.
    """
    names = [name for name in replay if not name.startswith(NOT_COMPARED)]
    comparison = Comparison(metrics=names, epochs=0)
    missing = [name for name in names if name not in original]
    extra = [name for name in original if name not in replay and not name.startswith(NOT_COMPARED)]
    firsts = []
    for name in names:
        if name in missing:
            continue
        old, new = list(original[name]), list(replay[name])
        if stopped_early and len(new) > len(old):
            new = new[: len(old)]
        comparison.epochs = max(comparison.epochs, min(len(old), len(new)))
        for epoch, (a, b) in enumerate(zip(old, new), start=1):
            if float(a).hex() != float(b).hex():
                firsts.append((epoch, f"{name} at epoch {epoch}: {float(a)!r} in the original, {float(b)!r} in the replay"))
                break
        else:
            if len(old) != len(new):
                epoch = min(len(old), len(new)) + 1
                firsts.append((epoch, f"{name}: {len(old)} epochs in the original, {len(new)} in the replay"))
    if firsts:
        comparison.first_difference = min(firsts, key=lambda item: item[0])[1]
    elif missing:
        comparison.first_difference = f"{missing[0]}: logged by the replay, not by the original"
    elif extra:
        comparison.first_difference = f"{extra[0]}: logged by the original, not by the replay"
    return comparison


def changed_versions(original_tags: Mapping[str, str], current_tags: Mapping[str, str]) -> list[str]:
    """``numpy 2.3.1 -> 2.3.2``, ``git.commit 1a2b3c4 -> 5d6e7f8``: what differs since the original."""
    changes = []
    keys = sorted({k for k in (*original_tags, *current_tags) if k.startswith("versions.")})
    for key in [*keys, V.TAG_GIT_COMMIT, V.TAG_GIT_DIRTY]:
        old, new = original_tags.get(key), current_tags.get(key)
        if old != new and (old is not None or key.startswith("versions.")):
            name = key[len("versions."):] if key.startswith("versions.") else key
            shorten = (lambda v: v[:12] if v else v) if key == V.TAG_GIT_COMMIT else (lambda v: v)
            changes.append(f"{name} {shorten(old) or '(none)'} -> {shorten(new) or '(none)'}")
    return changes


# ------------------------------------------------------------------------------ replay


@dataclass
class Replay:
    original_run_id: str
    original_name: str
    result: dict[str, Any]
    comparison: Comparison
    changes: list[str]
    overrides: list[str] = field(default_factory=list)


def replay(run_id: str, overrides: Sequence[str] = (), uri: str | None = None) -> Replay:
    """Train run ``run_id`` of tracking store ``uri`` again and compare (see the module).

    Raises:
        UserError: an unknown run, a run without its logged config, a bad override.
    """
    # Deliberately lazy (start-up time): MLflow is imported after quiet_mlflow() set its log level.
    from mlflow import MlflowClient

    from sweeps.tracking import client as tracking
    from sweeps.training.run import train

    uri = uri or DEFAULT_URI
    tracking.probe(uri)
    client = MlflowClient(tracking_uri=uri)
    original, cfg = _logged_run(client, run_id, uri, overrides)
    history: dict[str, list[float]] = {}

    def collect(epoch: int, logs: Mapping[str, float]) -> None:
        for key, value in logs.items():
            history.setdefault(V.metric_name(key), []).append(float(value))

    name = original.info.run_name or run_id
    result = train(cfg, callbacks=[collect], run_name=f"replay of {name}", tags={V.TAG_REPLAY_OF: run_id},
                   overrides=list(overrides))
    originals = {key: [m.value for m in sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)]
                 for key in _per_epoch_keys(original, history)}
    stopped_early = original.info.status != "FINISHED"
    comparison = compare_histories(originals, history, stopped_early)
    if stopped_early:
        comparison.notes.append(f"the original run is {original.info.status} (pruned or interrupted): "
                                f"compared over the {comparison.epochs} epochs it ran")
    if str(original.data.tags.get("seed")) in ("None", "null"):
        comparison.notes.append("the original run had no seed (training.seed=null): it cannot reproduce")
    changes = changed_versions(original.data.tags, reproducibility_tags(None)) if not comparison.identical else []
    verdict = {V.TAG_IDENTICAL: str(comparison.identical).lower()}
    if comparison.first_difference:
        verdict[V.TAG_FIRST_DIFFERENCE] = comparison.first_difference
    tracking.set_tags(client, result["run_id"], verdict)
    return Replay(run_id, name, result, comparison, changes, list(overrides))


def _logged_run(client, run_id: str, uri: str, overrides: Sequence[str]):
    """The original run and its logged config with ``overrides``, set to log the replay next to it."""
    from mlflow.exceptions import MlflowException  # lazy: see replay()

    try:
        original = client.get_run(run_id)
    except MlflowException:
        raise ConfigError("RUN_ID", run_id, f"the id of a run in tracking.uri={redact(uri)!r}") from None
    with tempfile.TemporaryDirectory(prefix="ann-replay-") as folder:
        try:
            path = client.download_artifacts(run_id, "config/config.yaml", folder)
        except (MlflowException, OSError):
            raise UserError(f"RUN_ID={run_id} cannot be replayed: it has no config/config.yaml artifact "
                            "(runs logged by ann-train and ann-sweep have it)") from None
        logged = OmegaConf.load(path)
    OmegaConf.set_struct(logged, True)
    try:
        cfg = OmegaConf.merge(logged, OmegaConf.from_dotlist(list(overrides)))
    except OmegaConfBaseException as error:
        key = getattr(error, "full_key", None)
        near = suggest_key(str(key)) if key else None
        hint = f"did you mean `{near}`?" if near else "expected a key of the logged config (see its config/config.yaml)"
        raise UserError(f"{key} is not allowed: {hint}") from None
    cfg = OmegaConf.to_container(cfg, resolve=True)
    experiment = client.get_experiment(original.info.experiment_id)
    cfg["tracking"] = {**cfg.get("tracking", {}), "enabled": True, "uri": uri,
                       "experiment_name": experiment.name, "run_name": None}
    return original, cfg


def _per_epoch_keys(original, history: Mapping[str, list[float]]) -> list[str]:
    """The replay's per-epoch metrics, and the original's that look per-epoch (``<name>/train``, ``<name>/val``)."""
    keys = [key for key in history if not key.startswith(NOT_COMPARED)]
    for key in original.data.metrics:
        split = key.rsplit("/", 1)
        if len(split) == 2 and split[1] in ("train", "val") and "/" not in split[0] and key not in keys:
            keys.append(key)
    return [key for key in keys if key in original.data.metrics]


# -------------------------------------------------------------------------------- CLI


def _fail(message: str, status: int = EXIT_USAGE) -> None:
    fail(PROG, message, status)


def report(outcome: Replay, uri: str) -> str:
    result, comparison = outcome.result, outcome.comparison
    lines = [f"replay of run {outcome.original_run_id} ({outcome.original_name}): "
             f"run {result['run_id']}  {run_url(uri, result['experiment_id'], result['run_id'])}"]
    if outcome.overrides:
        lines.append("with the overrides: " + " ".join(outcome.overrides))
    if comparison.identical:
        lines.append(f"identical: every per-epoch metric matches bit for bit "
                     f"({len(comparison.metrics)} metrics x {comparison.epochs} epochs: {', '.join(comparison.metrics)})")
    else:
        lines.append(f"different: {comparison.first_difference}")
        lines.append("changed since the original: " + ("; ".join(outcome.changes) if outcome.changes
                                                         else "no package version nor the git commit"))
    lines += [f"note: {note}" for note in comparison.notes]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """The ``ann-replay`` console script: ``ann-replay RUN_ID [key=value ...]``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help"):
        print(__doc__.split("\n\n", 2)[1], flush=True)
        return
    if not args or "=" in args[0] or args[0].startswith("-"):
        _fail("RUN_ID is missing: expected `ann-replay RUN_ID [key=value ...]`")
    run_id, overrides = args[0], args[1:]
    for override in overrides:
        if "=" not in override or override.startswith(("-", "+", "~")):
            _fail(f"{override!r} is not allowed: expected key=value overrides of the logged config after RUN_ID")
    uri = next((o.split("=", 1)[1] for o in overrides if o.startswith("tracking.uri=")), None)
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI
    overrides = [o for o in overrides if not o.startswith("tracking.uri=")]
    quiet_mlflow()
    # Deliberately lazy (start-up time): MLflow is imported after quiet_mlflow() set its log level.
    from mlflow.exceptions import MlflowException

    from sweeps.training.run import Terminated

    try:
        outcome = replay(run_id, overrides, uri)
    except (UserError, ann.AnnError) as error:
        _fail(str(error))
    except MlflowException as error:
        _fail(f"tracking failed during the replay: {one_line(error, 400)}", status=1)
    except (KeyboardInterrupt, Terminated) as error:
        exit_stopped(PROG, error, "the replay run")
    print(report(outcome, uri), flush=True)
    if not outcome.comparison.identical:
        raise SystemExit(EXIT_DIFFERENT)


if __name__ == "__main__":
    main()
