# Images of the team setup (docker-compose.yml):
#
#   mlflow  the MLflow tracking server (mlflow with its basic-auth extra, Flask-WTF, psycopg2)
#           and deploy/mlflow_init.py, which the one-shot mlflow-init service runs
#   worker  this project (ann + sweeps + the Hydra configs) with its dependencies: runs
#           ann-sweep, ann-train, optuna-dashboard
#
#   docker build --target mlflow -t ann-sweeps-mlflow:3.17.2 .
#   docker build --target worker -t ann-sweeps-worker:0.1.0 .
#
# Every Python package comes from a lock file, deploy/requirements/<image>.txt: each one at
# an exact version with the sha256 of its files (pip refuses anything else), dependencies
# included (--no-deps: nothing outside the lock), nothing installed when a container starts.
# The locks are made by deploy/requirements/lock.sh from the environment the tests ran in.
# Every worker of one sweep must run the same optuna (its storage schema) and an mlflow
# client matching the server: both locks hold the same mlflow.

ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /home/app --create-home --shell /usr/sbin/nologin app


FROM base AS mlflow
COPY deploy/requirements/mlflow.txt /tmp/requirements.txt
RUN pip install --require-hashes --no-deps -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt \
    && install -d -o app -g app /mlartifacts
COPY deploy/mlflow_init.py /opt/ann-sweeps/mlflow_init.py
USER 10001:10001
WORKDIR /home/app
EXPOSE 5000
CMD ["mlflow", "server", "--host", "0.0.0.0", "--port", "5000"]


FROM base AS worker
COPY deploy/requirements/worker.txt /tmp/requirements.txt
RUN pip install --require-hashes --no-deps -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt
WORKDIR /src
COPY pyproject.toml README.md ./
COPY ann ./ann
COPY conf ./conf
# sweeps/conf is a link to ../conf: the wheel built from here carries the configs.
COPY sweeps ./sweeps
# The project itself, built with the locked setuptools (no build isolation: nothing unlocked).
RUN pip install --no-deps --no-build-isolation . \
    && rm -rf /src/build /src/*.egg-info
USER 10001:10001
# Hydra's outputs/ folders go here (ephemeral: results live in PostgreSQL and MLflow).
WORKDIR /home/app
ENV MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR=false
CMD ["ann-sweep", "--help"]
