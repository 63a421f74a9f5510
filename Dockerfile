# Images of the team setup (docker-compose.yml):
#
#   mlflow  the MLflow tracking server: mlflow with its basic-auth extra and psycopg2, pinned
#           and installed at build time (nothing is pip-installed when a container starts)
#   worker  this project (ann + sweeps + the Hydra configs) with pinned mlflow, optuna,
#           hydra-core, psycopg2 and optuna-dashboard: runs ann-sweep, ann-train, optuna-dashboard
#
#   docker build --target mlflow -t ann-sweeps-mlflow:3.17.2 .
#   docker build --target worker -t ann-sweeps-worker:0.1.0 .
#
# The pins are the versions the tests ran with (tests/deploy/). Every worker of one sweep must
# run the same optuna (its storage schema) and an mlflow client matching the server.

ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm
ARG MLFLOW_VERSION=3.17.2
ARG PSYCOPG2_VERSION=2.9.13
ARG FLASK_WTF_VERSION=1.3.0
ARG OPTUNA_VERSION=5.0.0
ARG HYDRA_VERSION=1.3.8
ARG OPTUNA_DASHBOARD_VERSION=0.21.0

FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /home/app --create-home --shell /usr/sbin/nologin app


FROM base AS mlflow
ARG MLFLOW_VERSION
ARG FLASK_WTF_VERSION
ARG PSYCOPG2_VERSION
RUN pip install \
        "mlflow[auth]==${MLFLOW_VERSION}" \
        "Flask-WTF==${FLASK_WTF_VERSION}" \
        "psycopg2-binary==${PSYCOPG2_VERSION}" \
    && install -d -o app -g app /mlartifacts
USER 10001:10001
WORKDIR /home/app
EXPOSE 5000
CMD ["mlflow", "server", "--host", "0.0.0.0", "--port", "5000"]


FROM base AS worker
ARG MLFLOW_VERSION
ARG OPTUNA_VERSION
ARG HYDRA_VERSION
ARG PSYCOPG2_VERSION
ARG OPTUNA_DASHBOARD_VERSION
WORKDIR /src
COPY pyproject.toml README.md ./
COPY ann ./ann
COPY conf ./conf
# sweeps/conf is a link to ../conf: the wheel built from here carries the configs.
COPY sweeps ./sweeps
RUN pip install \
        . \
        "mlflow==${MLFLOW_VERSION}" \
        "optuna==${OPTUNA_VERSION}" \
        "hydra-core==${HYDRA_VERSION}" \
        "psycopg2-binary==${PSYCOPG2_VERSION}" \
        "optuna-dashboard==${OPTUNA_DASHBOARD_VERSION}" \
    && rm -rf /src/build /src/*.egg-info
USER 10001:10001
# Hydra's outputs/ folders go here (ephemeral: results live in PostgreSQL and MLflow).
WORKDIR /home/app
ENV MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR=false
CMD ["ann-sweep", "--help"]
