"""Optuna's plots of a study in one self-contained HTML page: ``plots/optuna.html`` of the parent run."""

from __future__ import annotations

import json
import math
import warnings
from typing import Any

from sweeps.config import sweep_settings
from sweeps.study import optuna_study as S
from sweeps.training.plots import spans_decades


def optuna_plots_html(study, settings: sweep_settings.SweepSettings, title: str | None = None) -> str:
    """Optuna's plots of the study in one self-contained HTML page (plotly).

    Optimization history, parameter importances, parallel coordinates and intermediate
    values (a single metric), or the Pareto front (several). A plot that cannot be drawn
    yet (too few trials) is replaced by a line saying why. Losses that span more than a
    decade get a log axis.

    With ``sweep.plotlyjs=embed`` the page carries plotly.js itself, gzip-compressed and
    unpacked by the browser (``DecompressionStream``): it works offline, in the MLflow UI's
    artifact viewer or opened as a file, at about 2 MB per sweep instead of plotly.js's
    4.8 MB; ``cdn`` loads plotly.js from its CDN (a page of a few hundred kB).
    """
    import optuna  # lazy: plotly is loaded only when a sweep finishes

    parts, figures = [], []
    for index, (heading, make) in enumerate(_sections(study, settings)):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                figure = make()
            figure.update_layout(height=480, margin=dict(l=60, r=30, t=60, b=50))
            if heading in ("Optimization history", "Intermediate values (per epoch)") and _spans_decades(figure):
                figure.update_yaxes(type="log")
            figures.append((f"plot{index}", figure.to_json()))
            body = f"<div id='plot{index}' class='plot'></div>"
        except Exception as error:  # e.g. importances need two completed trials
            body = f"<p class='note'>Not drawn: {_escape(' '.join(str(error).split())[:300])}</p>"
        parts.append(f"<section><h2>{_escape(heading)}</h2>{body}</section>")
    draw = "".join(
        f"draw({json.dumps(div)}, {figure_json});" for div, figure_json in figures
    )
    counts = S.state_counts(study)
    summary = ", ".join(f"{n} {state.lower()}" for state, n in sorted(counts.items()))
    heading = _escape(title or f"Study {settings.study_name}")
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{heading}</title>{_plotly_loader(settings.plotlyjs)}"
        "<style>body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:16px;color:#222}"
        "h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 4px}.plot{height:480px}"
        ".meta{color:#555;font-size:13px}.note{color:#777;font-style:italic}</style></head><body>"
        f"<h1>{heading}</h1><div class='meta'>{_escape(', '.join(settings.metrics))} "
        f"({_escape(', '.join(settings.directions))}) &middot; {settings.sampler} sampler &middot; "
        f"{settings.pruner} pruner &middot; {_escape(summary)} &middot; optuna {optuna.__version__}</div>"
        + "".join(parts)
        + "<script>function draw(id, fig) { Plotly.newPlot(id, fig.data, fig.layout, "
          "{responsive: true, displaylogo: false}); }"
        + f"plotlyReady.then(function () {{ {draw} }}).catch(function (e) {{"
          "document.body.insertAdjacentHTML('afterbegin', '<p class=note>The plots need plotly.js: ' + e + '</p>'); });"
          "</script></body></html>"
    )


def optuna_plots_html_of(trials, directions, settings: sweep_settings.SweepSettings) -> str:
    """:func:`optuna_plots_html` of a study holding ``trials`` (finished ``FrozenTrial``s) and
    ``directions``: made in memory, so that a process without the storage -- the tracking
    writer's helper (:mod:`sweeps.tracking.helper`) -- can draw the page."""
    study = S.in_memory_study(trials, directions, settings.study_name)
    return optuna_plots_html(study, settings)


def _sections(study, settings: sweep_settings.SweepSettings) -> list[tuple[str, Any]]:
    """The page's plots: ``(heading, function drawing the figure)``."""
    import optuna.visualization as vis  # lazy: plotly is loaded only when a sweep finishes

    target = (lambda t: t.values[0]) if settings.multi_objective else None
    name = settings.metrics[0]
    sections: list[tuple[str, Any]] = [
        ("Optimization history", lambda: vis.plot_optimization_history(study, target=target, target_name=name)),
        ("Parameter importances", lambda: vis.plot_param_importances(study, target=target, target_name=name)),
        ("Parallel coordinates", lambda: vis.plot_parallel_coordinate(study, target=target, target_name=name)),
    ]
    if settings.multi_objective:
        sections.append(("Pareto front", lambda: vis.plot_pareto_front(study, target_names=list(settings.metrics))))
    else:
        sections.append(("Intermediate values (per epoch)", lambda: vis.plot_intermediate_values(study)))
    return sections


def _plotly_loader(mode: str) -> str:
    """A script that defines the promise ``plotlyReady`` (resolved once ``Plotly`` exists)."""
    if mode == "cdn":
        src = f"https://cdn.plot.ly/plotly-{_plotlyjs_version()}.min.js"
        return (
            "<script>var plotlyReady = new Promise(function (ok, fail) {"
            f"var s = document.createElement('script'); s.src = {json.dumps(src)};"
            "s.onload = ok; s.onerror = function () { fail('could not load ' + s.src); };"
            "document.head.appendChild(s); });</script>"
        )
    import base64  # lazy: only the embedded plotly.js needs these
    import gzip  # lazy: as above

    import plotly.offline  # lazy: plotly is loaded only when a sweep finishes

    packed = base64.b64encode(gzip.compress(plotly.offline.get_plotlyjs().encode("utf-8"), 9)).decode("ascii")
    return (
        f"<script>var plotlyPacked = \"{packed}\";"
        "var plotlyReady = (async function () {"
        "var bytes = Uint8Array.from(atob(plotlyPacked), function (c) { return c.charCodeAt(0); });"
        "var text = await new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'))).text();"
        "var s = document.createElement('script'); s.text = text; document.head.appendChild(s);"
        "if (typeof Plotly === 'undefined') { throw new Error('plotly.js did not load'); } })();</script>"
    )


def _spans_decades(figure) -> bool:
    values = []
    for trace in figure.data:
        ys = getattr(trace, "y", None)
        if ys is not None:
            values += [float(v) for v in ys if v is not None and isinstance(v, (int, float)) and math.isfinite(v)]
    return all(v > 0 for v in values) and spans_decades(values, factor=10)


def _plotlyjs_version() -> str:
    try:
        from plotly.offline._plotlyjs_version import __plotlyjs_version__  # lazy: as above

        return __plotlyjs_version__
    except Exception:
        return "latest"


def _escape(text: str) -> str:
    import html  # lazy: rarely needed

    return html.escape(str(text))


