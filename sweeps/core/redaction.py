"""One function hides credentials in everything the package writes or prints: :func:`redact`.

Every tag, param and text artifact sent to MLflow (:mod:`sweeps.tracking.client`), every line the
command-line tools print, every log record (:class:`RedactingFilter`), the configs kept
in Hydra's output folder (:func:`write_hydra_output`) and what Hydra itself prints for
``--cfg``, ``--info`` and ``--help`` (:func:`redacted_printing`) go through it. It hides

* the password of a URL's userinfo: ``postgresql://optuna:s3cret@db/optuna`` becomes
  ``postgresql://optuna:***@db/optuna`` (the user name stays: it says who connects);
* the value of a ``...password=``, ``...token=`` or ``...secret=`` pair (a URL's query
  string, an environment assignment);
* the literal value of the credentials MLflow and PostgreSQL read from the environment
  (:data:`SECRET_ENVIRONMENT`), wherever it appears.

:func:`without_userinfo` drops the user name too, for links printed to click on.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any, Iterator, Sequence
from urllib.parse import urlsplit, urlunsplit

HIDDEN = "***"
#: Environment variables that hold a credential (MLflow's client, libpq, the compose setup).
SECRET_ENVIRONMENT = ("MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN", "PGPASSWORD",
                      "OPTUNA_STORAGE", "AWS_SECRET_ACCESS_KEY")
#: Shorter values are not searched for literally (they would hide ordinary words).
MIN_SECRET_LENGTH = 6

# scheme://user:password@ -- the password runs to the last '@' before the host (SQLAlchemy
# reads it that way), never across white space, quotes or another URL.
_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@'\"]*):(?P<password>[^\s'\"]*?)@"
                           r"(?=[^\s@'\"]*(?:[\s'\"]|$))")
_KEY_VALUE = re.compile(r"(?i)(?P<head>\b[A-Za-z_]*(?:password|passwd|secret|token)=)(?P<value>[^\s&'\"]+)")


def redact(text: Any) -> str:
    """``text`` (made a string) with every credential replaced by ``***``."""
    text = str(text)
    if not text:
        return text
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}:{HIDDEN}@", text)
    text = _KEY_VALUE.sub(lambda m: m["head"] + (m["value"] if m["value"] == HIDDEN else HIDDEN), text)
    for secret in _environment_secrets():
        text = text.replace(secret, HIDDEN)
    return text


def redact_optional(text: str | None) -> str | None:
    """:func:`redact` that keeps ``None`` (an unset URI) as it is."""
    return None if text is None else redact(text)


def without_userinfo(url: str) -> str:
    """``url`` without ``user:password@`` (a link to open in a browser)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return redact(url)
    host = parts.netloc.rpartition("@")[2]
    return redact(urlunsplit(parts._replace(netloc=host)))


def _environment_secrets() -> list[str]:
    values = []
    for name in SECRET_ENVIRONMENT:
        value = os.environ.get(name, "")
        password = _URL_PASSWORD.search(value)
        if password:  # a URL in the environment: its password is the secret
            value = password["password"]
        if len(value) >= MIN_SECRET_LENGTH and value != HIDDEN:
            values.append(value)
    return values


class RedactingFilter(logging.Filter):
    """Redacts every record a handler writes (its message and its traceback text)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def redact_logging() -> None:
    """Put a :class:`RedactingFilter` on every handler of the root logger (Hydra's console
    and ``<job>.log`` file handlers) that does not have one."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


def write_hydra_output(cfg) -> None:
    """Write Hydra's ``.hydra/{config,hydra,overrides}.yaml`` into the job's output folder,
    ``cfg`` being the job's config, redacted (the root configs set ``hydra.output_subdir: null`` so that Hydra does not
    write them in clear first). Nothing outside a Hydra job, or when the job runs in the
    current folder (``ann-sweep-status``)."""
    # Deliberately lazy: the bottom layer does not load Hydra for the callers that never run a job.
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    if not HydraConfig.initialized():
        return
    hydra_cfg = HydraConfig.get()
    output = Path(hydra_cfg.runtime.output_dir)
    if output.resolve() == Path.cwd().resolve():
        return
    folder = output / ".hydra"
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "config.yaml": OmegaConf.to_yaml(cfg),
        "hydra.yaml": OmegaConf.to_yaml(OmegaConf.create({"hydra": hydra_cfg})),
        "overrides.yaml": OmegaConf.to_yaml(hydra_cfg.overrides.task),
    }
    for name, text in files.items():
        (folder / name).write_text(redact(text), encoding="utf-8")


#: Hydra's flags that print the composed config (overrides included) instead of running:
#: ``--cfg job|hydra|all``, ``--info [config|all|...]``, and ``--help`` (whose template may hold it).
HYDRA_PRINTING_FLAGS = ("-c", "--cfg", "-i", "--info", "-h", "--help")


class RedactingWriter:
    """A text stream that passes what is written through :func:`redact` to ``stream``."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(redact(text))
        return len(text)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


@contextlib.contextmanager
def redacted_printing(args: Sequence[str]) -> Iterator[None]:
    """Redact standard output for the block when ``args`` ask Hydra to print the config.

    Hydra prints ``--cfg``'s YAML, ``--info``'s log records and ``--help`` itself, straight
    to ``sys.stdout``: a password typed in an override (``sweep.storage=postgresql://u:pw@db/x``)
    would be printed back. With none of :data:`HYDRA_PRINTING_FLAGS` in ``args`` (the program
    runs), nothing changes: what it prints is redacted where it is written.
    """
    if not any(arg in HYDRA_PRINTING_FLAGS or arg.startswith(("--cfg=", "--info=")) for arg in args):
        yield
        return
    original = sys.stdout
    sys.stdout = RedactingWriter(original)
    try:
        yield
    finally:
        sys.stdout = original
