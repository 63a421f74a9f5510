"""The documentation's examples run, and print what the documentation says they print.

Every command in README.md's code blocks, and the examples of the documentation pages in
:data:`RUN_PAGES` (the quick start, the tutorials, the CLI recipes, the Python API snippets,
the ``curl`` prediction against ``mlflow models serve``), are run here as a user would
type them: each ``bash`` line through ``bash -c`` in a fresh folder, each ``python`` block as
a script, ``console`` blocks (``$ command`` followed by its output) compared line by line
with what the command printed (``…`` in a documented line stands for any text: a path or an
id that differs on every machine). A ``yaml`` block whose first comment lines say
``saved as PATH`` is written to PATH before the commands after it run.

What the tests change, and why (nothing else is changed):

* ``pip install ...`` is not run (it would reinstall the package these tests run from):
  the extras it names must exist in pyproject.toml. ``python -m pytest`` is not run (it is
  this suite): .ci/run must run it.
* ``ann-train``, ``ann-sweep``, ``ann-sweep-status``, ``mlflow`` and ``python`` are started
  through the interpreter running the tests (a shim folder first on PATH, with
  ``tests/programs.py``'s commands), so the tests work from any install; ``PYTHONPATH`` is the repository, ``MLFLOW_TRACKING_URI`` is unset
  (``tracking=server`` commands get a real ``mlflow server`` of their own through it) and
  ``HOME`` is a temporary folder; every folder has ``data/mnist`` with small synthetic
  MNIST IDX files for ``dataset.path=data/mnist``; every folder holds a small ``data.csv`` (columns ``a``,
  ``b``, ``label``) for ``dataset.path=data.csv``.
* Fixed ports (``-p 5001``, ``localhost:5001``, ``mlflow ui``'s 5000) become free ones:
  other tests may run at the same time. ``mlflow ui`` is started in the background and
  checked to answer; a line ending in ``&`` runs in the background until the page is done.
* In the documentation pages (not in README.md) an ``ann-sweep`` that would run trials gets
  ``sweep.n_trials=2 training.epochs=2 sweep.epochs=null`` appended (later overrides win in
  Hydra; ``sweep.epochs=null`` makes the default sweep's ``auto`` epochs the two), except
  the default ``ann-sweep``, which README.md's test runs in full: its counts, epochs and
  best trial are checked against README.md and the sweep tutorial, and pages that use its
  champion run in a copy of its folder.

Pages not run, with the reason: the team setup and distributed sweeps (docker compose,
remote hosts; tests/deploy and tests/distributed run those commands natively), browsing
(a browser; tests/browser), the benchmarks (minutes of measurement each; they are scripts)
and the engine's data page (it downloads MNIST from the internet).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import requests

import services
from ann.data import write_idx
from programs import COMMANDS, program

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"

#: The pages whose examples run, and whether they need the default sweep's folder first.
RUN_PAGES = {
    "tutorials/train.md": False,
    "tutorials/sweep.md": True,
    "how-to/own-csv.md": False,
    "how-to/own-search-space.md": False,
    "reference/cli.md": True,
    "reference/api.md": False,
    "reference/what-a-run-records.md": True,
}

#: Blocks or commands that are not run, each with the reason (every entry must match one).
NOT_RUN = {
    # a fragment: names from the surrounding text (model_uri, frame)
    ("reference/what-a-run-records.md", "model = mlflow.pyfunc.load_model(model_uri)"): "a fragment of names the page defines in prose",
    ("reference/what-a-run-records.md", 'model.predict(frame)                                  # labels; params'): "a fragment; the sweep tutorial runs the complete example",
}

#: Appended to an ann-sweep of a documentation page that would run trials.
SHORT_SWEEP = ["sweep.n_trials=2", "training.epochs=2", "sweep.epochs=null"]



# ---------------------------------------------------------------------------------------
# Reading the examples


@dataclass
class Block:
    lang: str
    text: str
    line: int


def code_blocks(path: Path) -> list[Block]:
    blocks, lang, lines, start = [], None, [], 0
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fence = re.match(r"^```(\S*)\s*$", line)
        if fence and lang is None:
            lang, lines, start = fence.group(1) or "text", [], number
        elif line.startswith("```") and lang is not None:
            blocks.append(Block(lang, "\n".join(lines), start))
            lang = None
        elif lang is not None:
            lines.append(line)
    return blocks


def commands(block: Block) -> list[str]:
    """The block's command lines, continuation lines joined; comment-only lines dropped."""
    out, pending = [], ""
    for line in block.text.splitlines():
        if pending:
            line = pending + " " + line.strip()
            pending = ""
        if line.rstrip().endswith("\\"):
            pending = line.rstrip()[:-1].rstrip()
            continue
        if line.strip() and not line.lstrip().startswith("#"):
            out.append(line.strip())
    return out


def console_steps(block: Block) -> list[tuple[str, list[str]]]:
    """``$ command`` lines of a console block with the output lines that follow each."""
    steps: list[tuple[str, list[str]]] = []
    for line in block.text.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif steps and line.strip():
            steps[-1][1].append(line)
    return steps


def saved_as(block: Block) -> str | None:
    for line in block.text.splitlines()[:2]:
        match = re.match(r"#\s*saved as (\S+)", line)
        if match:
            return match.group(1)
    return None


def not_run_reason(page: str, text: str) -> str | None:
    for (where, fragment), reason in NOT_RUN.items():
        if where == page and fragment in text:
            return reason
    return None


# ---------------------------------------------------------------------------------------
# Running them


class Session:
    """A folder, an environment with the shims first on PATH, and background processes."""

    def __init__(self, workdir: Path, home: Path, shims: Path, server_uri: str | None = None) -> None:
        self.workdir, self.home = workdir, home
        self.env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
        self.env.update(PATH=f"{shims}{os.pathsep}{os.environ['PATH']}", HOME=str(home),
                        PYTHONPATH=str(ROOT), MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false")
        self.server_uri = server_uri
        self.background: list[subprocess.Popen] = []
        self.ports: dict[str, str] = {}
        self.ran: list[str] = []
        if not (workdir / "data.csv").exists():
            write_data_csv(workdir / "data.csv")
        if not (workdir / "data" / "mnist").exists():  # dataset.path=data/mnist
            (workdir / "data").mkdir(exist_ok=True)
            (workdir / "data" / "mnist").symlink_to(home / "data" / "mnist")

    def with_free_ports(self, command: str) -> str:
        for port in re.findall(r"(?:-p |--port |localhost:|127\.0\.0\.1:)(\d{4})\b", command):
            if port not in self.ports:
                self.ports[port] = str(services.free_port())
        for old, new in self.ports.items():
            command = re.sub(rf"(-p |--port |localhost:|127\.0\.0\.1:){old}\b", rf"\g<1>{new}", command)
        return command

    def env_for(self, command: str) -> dict:
        env = dict(self.env)
        if "tracking=server" in command:
            assert self.server_uri, f"{command!r} needs the MLflow server fixture"
            env["MLFLOW_TRACKING_URI"] = self.server_uri
        return env

    def run(self, command: str, timeout: float = 1800) -> subprocess.CompletedProcess:
        # README.md's default sweep takes about 35 s on 2 quiet cores, over 20 minutes on a loaded machine.
        command = self.with_free_ports(command)
        self.ran.append(command)
        return subprocess.run(["bash", "-c", command], cwd=self.workdir, env=self.env_for(command),
                              capture_output=True, text=True, timeout=timeout)

    def start(self, command: str) -> subprocess.Popen:
        command = self.with_free_ports(command)
        self.ran.append(command + " &")
        process = subprocess.Popen(["bash", "-c", f"exec {command}"], cwd=self.workdir, env=self.env_for(command),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                   start_new_session=True)
        self.background.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.background:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
        self.background.clear()


def write_data_csv(path: Path) -> None:
    """The ``data.csv`` (features ``a``, ``b``; target ``label``) the recipes name."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 200))
    label = np.where(a + b > 0, "yes", "no")
    path.write_text("a,b,label\n" + "".join(f"{x:.4f},{y:.4f},{z}\n" for x, y, z in zip(a, b, label)))


def wait_for_http(url: str, process: subprocess.Popen, timeout: float = 300) -> requests.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"{url}: the server exited: {process.stderr.read()[-2000:]}"
        try:
            return requests.get(url, timeout=30)  # a server's first answer is slow on a loaded machine
        except (requests.ConnectionError, requests.Timeout):
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {timeout} s")


def extras_named(command: str) -> list[str]:
    match = re.search(r"\.\[([^\]]+)\]", command)
    return [extra.strip() for extra in match.group(1).split(",")] if match else []


def check_setup_part(part: str) -> bool:
    """Checks a part of a set-up command that is not run here; False if it is to be run."""
    if part.startswith("pip install"):
        extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
        for extra in extras_named(part):
            assert extra in extras, f"{part!r}: pyproject.toml has no extra {extra!r}"
        assert re.search(r' -e "?\.', part), part
        return True
    if re.fullmatch(r"python3? -m pytest( .*)?", part):
        assert "python3 -m pytest" in (ROOT / ".ci" / "run").read_text()
        return True
    return False


def run_line(session: Session, line: str, shorten: bool) -> subprocess.CompletedProcess | None:
    """One documented command line: checked, started in the background, or run (must exit 0)."""
    result = None
    for part in [p.strip() for p in line.split(" && ")]:
        if check_setup_part(part):
            continue
        if shorten and re.match(r"ann-sweep\b(?!-)", part) and not re.search(r"--cfg|--help", part):
            if part.split("#")[0].strip() == "ann-sweep":
                continue  # the default sweep: run in full by the README test, in this folder
            part = re.sub(r"(\s+#.*)?$", " " + " ".join(SHORT_SWEEP), part, count=1)
        if part.endswith("&"):
            session.start(part[:-1].strip())
            continue
        if re.match(r"mlflow ui\b", part):
            process = session.start(part.split(" #")[0] + f" --port {services.free_port()}")
            port = re.search(r"--port (\d+)", session.ran[-1]).group(1)
            assert wait_for_http(f"http://127.0.0.1:{port}/", process).status_code == 200
            continue
        if part.startswith("curl "):
            port = re.search(r"localhost:(\d+)", session.with_free_ports(part)).group(1)
            wait_for_http(f"http://127.0.0.1:{port}/ping", session.background[-1])
        result = session.run(part)
        assert result.returncode == 0, f"{part!r} exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def matches(documented: str, printed: str) -> bool:
    pattern = ".*".join(re.escape(piece) for piece in documented.split("…"))
    return re.fullmatch(pattern, printed) is not None


def run_console(session: Session, block: Block) -> None:
    for command, expected in console_steps(block):
        result = session.run(command.split("  #")[0].strip())
        printed = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
        assert result.returncode == 2, f"{command!r} exited {result.returncode}: {printed}"
        assert len(printed) == len(expected), f"{command!r} printed {printed}, the docs show {expected}"
        for want, got in zip(expected, printed):
            assert matches(want, got), f"{command!r}:\n  docs:    {want}\n  printed: {got}"


def run_python(session: Session, block: Block, name: str) -> subprocess.CompletedProcess:
    script = session.workdir / f"{name}.py"
    script.write_text(block.text + "\n")
    session.ran.append(f"python {script.name}")
    result = subprocess.run([sys.executable, str(script)], cwd=session.workdir, env=session.env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"{name} (line {block.line}) failed:\n{block.text}\n{result.stderr[-3000:]}"
    return result


def run_page(session: Session, page: str, path: Path, shorten: bool) -> None:
    for index, block in enumerate(code_blocks(path)):
        reason = not_run_reason(page, block.text)
        if reason:
            continue
        if block.lang == "yaml" and saved_as(block):
            target = session.workdir / saved_as(block)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.text + "\n")
        elif block.lang == "bash":
            for line in commands(block):
                run_line(session, line, shorten)
        elif block.lang == "console":
            run_console(session, block)
        elif block.lang == "python":
            run_python(session, block, f"snippet_{Path(page).stem}_{index}")


# ---------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def shims(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("shims")
    scripts = {name: f'exec {shlex.join(program(name))} "$@"' for name in COMMANDS}
    scripts["mlflow"] = f'exec {shlex.quote(sys.executable)} -m mlflow "$@"'
    scripts["python"] = f'exec {shlex.quote(sys.executable)} "$@"'
    scripts["python3"] = scripts["python"]
    for name, body in scripts.items():
        (folder / name).write_text(f"#!/usr/bin/env bash\n{body}\n")
        (folder / name).chmod(0o755)
    return folder


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """A HOME with ~/data/mnist: small synthetic IDX files (600 + 100 images of 28x28)."""
    home = tmp_path_factory.mktemp("home")
    mnist = home / "data" / "mnist"
    mnist.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 600), ("t10k", 100)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = (rng.random((n, 28, 28)) * 64 + labels[:, None, None] * 19).astype(np.uint8)
        write_idx(mnist / f"{prefix}-images-idx3-ubyte", images)
        write_idx(mnist / f"{prefix}-labels-idx1-ubyte", labels)
    return home


@pytest.fixture(scope="module")
def docs_mlflow_server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("docs-mlflow-server")
    server = services.MlflowServer(f"sqlite:///{workdir / 'server.db'}", workdir)
    server.start()
    yield server.uri
    server.stop()


@pytest.fixture(scope="module")
def readme_session(tmp_path_factory, shims, home):
    """README.md's commands, in order, in one fresh folder (the default sweep's folder)."""
    session = Session(tmp_path_factory.mktemp("readme"), home, shims)
    outputs: dict[str, subprocess.CompletedProcess] = {}
    try:
        for block in code_blocks(README):
            assert block.lang in ("bash", "text"), f"README.md line {block.line}: a {block.lang} block"
            if block.lang != "bash":
                continue
            for line in commands(block):
                result = run_line(session, line, shorten=False)
                if result is not None:
                    outputs[line] = result
    finally:
        session.stop_all()
    return session, outputs


# ---------------------------------------------------------------------------------------
# Tests


def test_the_readme_is_at_most_200_lines():
    assert len(README.read_text().splitlines()) <= 200


def test_the_readme_starts_with_the_two_set_up_commands():
    bash = [block.text for block in code_blocks(README) if block.lang == "bash"]
    assert bash[:2] == ['pip install -e . && ann-sweep', 'pip install -e ".[dev]" && python -m pytest']
    index = [block.text for block in code_blocks(DOCS / "index.md") if block.lang == "bash"]
    assert index[:2] == bash[:2], "the docs' quick start is the README's"


def test_every_docs_page_is_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md"))
    assert [page for page in pages if f": {page}" not in nav] == []


def config_keys(section: dict, prefix: str = "") -> set[str]:
    """The dotted keys of a config section (``sweep.params``, the search space, is one key)."""
    keys = set()
    for key, value in section.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and name != "sweep.params":
            keys |= config_keys(value, name + ".")
        else:
            keys.add(name)
    return keys


def test_every_config_key_is_in_the_configuration_reference():
    """Every key of every shipped config option is documented: in the group's section of
    docs/reference/configuration.md (as `key` or `key: default`; a sampler's or pruner's
    setting by its own name), or by its full name in a reference page
    (e.g. `training.schedule.gamma`)."""
    from omegaconf import OmegaConf

    from sweeps.study.runner import compose

    reference = (DOCS / "reference" / "configuration.md").read_text()
    pages = "\n".join(page.read_text() for page in (DOCS / "reference").glob("*.md"))
    options = [[]]
    for group in ("optimizer", "dataset", "model", "tracking", "sweep"):
        options += [[f"{group}={path.stem}"] for path in sorted((ROOT / "conf" / group).glob("*.yaml"))]
    keys = set()
    for overrides in options:
        keys |= config_keys(OmegaConf.to_container(compose(overrides), resolve=False))
    missing = []
    for dotted in sorted(keys):
        group, key = dotted.split(".", 1)
        section = reference.split(f"## `{group}`")[-1] if f"## `{group}`" in reference else reference
        names = {key, key.rsplit(".", 1)[-1]}  # sampler.population_size: a row of the sampler table
        if not any(re.search(rf"`{re.escape(name)}[`:]", section) for name in names) and f"`{dotted}`" not in pages:
            missing.append(dotted)
    assert missing == [], f"document these keys in docs/reference/configuration.md: {missing}"


#: How far a shown count of epochs trained may be from a run's: another CPU's floating-point
#: kernels can tip a close pruning decision (a trial pruned a rung earlier or later: 18 epochs).
EPOCHS_TOLERANCE = 0.05


def assert_sweep_counts(shown: str, printed: str) -> None:
    """``printed`` (ann-sweep's output) finished the trials ``shown`` says, ``"7 complete, 33 pruned,
    0 failed; 1359 epochs trained"``: the same states, and as many epochs within EPOCHS_TOLERANCE."""
    pattern = r"(\d+ complete, \d+ pruned, \d+ failed); (\d+) epochs trained"
    expected, actual = re.search(pattern, shown), re.search(pattern, printed)
    assert actual is not None and actual[1] == expected[1], (shown, printed[-1500:])
    assert abs(int(actual[2]) - int(expected[2])) <= EPOCHS_TOLERANCE * int(expected[2]), (shown, actual[0])


@pytest.mark.slow
def test_every_readme_command_runs_and_prints_what_the_readme_says(readme_session):
    session, outputs = readme_session
    text = README.read_text()
    sweep = outputs["pip install -e . && ann-sweep"].stdout
    counts = re.search(r"\((\d+) complete, (\d+) pruned, about ([\d,]+) epochs", text)
    assert_sweep_counts(f"{counts[1]} complete, {counts[2]} pruned, 0 failed; {counts[3].replace(',', '')} epochs trained", sweep)
    best = re.search(r"`(best: [^`]+)`", text).group(1)
    assert best in sweep
    refit = re.search(r"\((\d+\.\d+) % test accuracy\)", text).group(1)
    refit_block = re.search(r"^refit:.*(?:\n  .*)*", sweep, re.MULTILINE).group(0)  # its head and indented scores
    assert f"accuracy/test {float(refit) / 100:.4f}" in refit_block, refit_block
    assert "models:/digits-tabular@champion" in sweep
    train = next(result.stdout for line, result in outputs.items() if line.startswith("ann-train"))
    verdict = re.search(r"it prints `(fit: \w+)`", text).group(1)
    assert any(line.startswith(verdict + ":") for line in train.splitlines()), train[-1500:]
    answer = re.search(r"which answers `([^`]+)`", text).group(1)
    curl = next(result.stdout for line, result in outputs.items() if line.startswith("curl"))
    assert curl.strip() == answer
    assert any(command.startswith("mlflow ui") for command in session.ran)


@pytest.mark.slow
def test_the_sweep_tutorial_shows_the_default_sweeps_output(readme_session):
    _, outputs = readme_session
    sweep = outputs["pip install -e . && ann-sweep"].stdout
    tutorial = (DOCS / "tutorials" / "sweep.md").read_text()
    shown = next(block.text for block in code_blocks(DOCS / "tutorials" / "sweep.md")
                 if block.lang == "text" and "trials finished in" in block.text)
    checked = []
    for line in shown.splitlines():
        if line.startswith(("best:", "refit:", "model:", "fit:")) or re.match(r"\s+1\s+\d+\s+COMPLETE", line):
            assert line.strip()[:60] in sweep, line
            checked.append(line)
        finished = re.match(r"40/40 trials finished in \d+ s: (.*)$", line)
        if finished:
            assert_sweep_counts(finished.group(1), sweep)
            counts = re.match(r"(\d+ complete, \d+ pruned), 0 failed; (\d+ epochs trained)", finished.group(1))
            assert f"{counts[1]}, {counts[2]}" in tutorial  # the prose above the output says the same
            checked.append(line)
    assert len(checked) == 6, checked  # fit, first row, best, refit, model and the counts: none went missing


@pytest.mark.slow
def test_the_train_tutorial_shows_what_ann_train_prints(tmp_path, shims, home):
    session = Session(tmp_path, home, shims)
    printed = session.run("ann-train").stdout
    shown = next(block.text for block in code_blocks(DOCS / "tutorials" / "train.md")
                 if block.lang == "text" and block.text.startswith("fit:"))
    for line in shown.splitlines()[:3]:
        assert line in printed.splitlines(), f"the tutorial shows {line!r}; ann-train printed:\n{printed[-1500:]}"


@pytest.mark.slow
@pytest.mark.parametrize("page", sorted(RUN_PAGES))
def test_the_examples_of_a_docs_page_run(page, readme_session, tmp_path, shims, home, docs_mlflow_server):
    workdir = tmp_path / "work"
    if RUN_PAGES[page]:
        shutil.copytree(readme_session[0].workdir, workdir)
    else:
        workdir.mkdir()
    session = Session(workdir, home, shims, server_uri=docs_mlflow_server)
    try:
        run_page(session, page, DOCS / page, shorten=True)
    finally:
        session.stop_all()
    assert session.ran, f"{page}: nothing ran"


def test_every_not_run_entry_matches_a_block():
    for (page, fragment), reason in NOT_RUN.items():
        assert any(fragment in block.text for block in code_blocks(DOCS / page)), (page, fragment, reason)


def test_commands_are_read_as_bash_reads_them():
    block = Block("bash", "ann-sweep a=1 \\\n    b=2   # two\n# only a comment\nmlflow ui", 1)
    assert commands(block) == ["ann-sweep a=1 b=2   # two", "mlflow ui"]
    assert shlex.split("ann-sweep a=1 b=2   # two", comments=True) == ["ann-sweep", "a=1", "b=2"]
    assert matches("in '…/iris.csv': x", "in '/tmp/a/iris.csv': x")
    assert not matches("in '…/iris.csv': x", "in '/tmp/a/iris.csv': y")
