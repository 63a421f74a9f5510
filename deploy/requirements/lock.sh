#!/bin/sh
# Lock the images' Python packages: <image>.in -> <image>.txt, every package (dependencies
# included) at one version with the sha256 of each of its files on PyPI. The Dockerfile
# installs them with `pip install --require-hashes --no-deps -r <image>.txt`.
#
# Run it from the environment the tests ran in (`pip install -e ".[dev]"`, then the tests):
# the packages that environment holds keep the versions it holds, so the images run what
# was tested. Needs uv (`pip install uv`) and PyPI.
#   deploy/requirements/lock.sh
set -eu
cd "$(dirname "$0")"
python3 -m pip freeze --exclude-editable > tested-env.txt
trap 'rm -f tested-env.txt' EXIT
for image in mlflow worker; do
    uv pip compile --quiet --generate-hashes --python-version 3.11 --python-platform linux \
        --custom-compile-command "deploy/requirements/lock.sh" \
        --constraint tested-env.txt "$image.in" --output-file "$image.txt"
done
