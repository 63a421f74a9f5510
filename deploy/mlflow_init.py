"""The workers' MLflow user, created or updated idempotently (the ``mlflow-init`` service).

``docker-compose.yml`` runs this once the ``mlflow`` server is healthy, with the admin's
credentials (``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``, as MLflow's
client reads them), before any worker starts. The workers then log in as
``MLFLOW_WORKER_USERNAME`` with ``MLFLOW_WORKER_PASSWORD``; the admin stays for people.

* The user is created if it is missing; otherwise its password is set to
  ``MLFLOW_WORKER_PASSWORD`` (change it in ``.env`` and ``docker compose up -d`` again to
  rotate it).
* It is never an admin: an admin flag set by hand is taken back.
* It gets no grant. Like every user it reads what ``MLFLOW_AUTH_DEFAULT_PERMISSION``
  allows and manages what it creates (MLflow gives the creator ``MANAGE`` on a new
  experiment or registered model): the workers write their sweeps' experiments, runs and
  models, and cannot create users, change permissions, or change or delete anyone
  else's experiments.

Exit status: 0 ready; 2 a setting in ``.env`` is refused (a ``change-me`` or empty
password, the admin's name, admin credentials the server refuses); 1 the server could
not be asked. Every error is one line on stderr; no password is ever printed.
"""

from __future__ import annotations

import os
import sys
import warnings

# Importing MLflow's server package warns about MLflow's own use of Starlette: not news for
# whoever reads this service's log, so warnings raised in MLflow's modules are filtered
# before the imports below (hence their place).
warnings.filterwarnings("ignore", module=r"mlflow\.")

from mlflow.exceptions import MlflowException  # noqa: E402
from mlflow.server.auth.client import AuthServiceClient  # noqa: E402

PROG = "mlflow-init"


class SettingError(Exception):
    """A value in .env that cannot be used (exit 2)."""


def _required(name: str) -> str:
    value = os.environ.get(name, "")
    if not value or value.startswith("change-me"):
        raise SettingError(f"set {name} in .env (not empty, not change-me...)")
    return value


def _refused(error: MlflowException) -> bool:
    return "401" in str(error) or getattr(error, "error_code", "") == "UNAUTHENTICATED"


def _missing(error: MlflowException) -> bool:
    return getattr(error, "error_code", "") == "RESOURCE_DOES_NOT_EXIST" or "404" in str(error)


def ensure_worker_user(client: AuthServiceClient, username: str, password: str) -> str:
    """Create ``username`` or set its password; never an admin. Returns what was done."""
    try:
        user = client.get_user(username)
    except MlflowException as error:
        if not _missing(error):
            raise
        client.create_user(username=username, password=password)
        return "created"
    client.update_user_password(username=username, password=password)
    if user.is_admin:
        client.update_user_admin(username=username, is_admin=False)
        return "password set, admin flag taken back"
    return "password set"


def main() -> int:
    try:
        uri = _required("MLFLOW_TRACKING_URI")
        admin = _required("MLFLOW_TRACKING_USERNAME")
        _required("MLFLOW_TRACKING_PASSWORD")
        username = _required("MLFLOW_WORKER_USERNAME")
        password = _required("MLFLOW_WORKER_PASSWORD")
        if username == admin:
            raise SettingError("MLFLOW_WORKER_USERNAME must differ from MLFLOW_ADMIN_USERNAME: "
                               "the workers get a user of their own")
        if password == os.environ["MLFLOW_TRACKING_PASSWORD"]:
            raise SettingError("MLFLOW_WORKER_PASSWORD must differ from MLFLOW_ADMIN_PASSWORD")
        client = AuthServiceClient(uri)
        try:
            done = ensure_worker_user(client, username, password)
        except MlflowException as error:
            if _refused(error):
                raise SettingError(f"{uri} refuses the admin {admin!r} (HTTP 401): MLFLOW_ADMIN_PASSWORD in .env "
                                   "is not the admin's password (it counts on the first start only)") from None
            raise
    except SettingError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # the server away or answering nonsense: one line, no traceback
        # (MLflow's messages name the endpoint, never the credentials, which travel in a header.)
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        print(f"{PROG}: error: cannot set up the MLflow user: {message}", file=sys.stderr)
        return 1
    print(f"{PROG}: MLflow user {username!r} is ready ({done}; not an admin)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
