# One image for every app service of docker-compose.yml: the entrypoint is the `billing` CLI, so a
# service's `command:` holds only the subcommand and its options (e.g. `worker --processes 2`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Install from a scratch directory, then run elsewhere: the sources must not shadow the installed packages.
WORKDIR /src
COPY pyproject.toml README.md ./
COPY worker/ worker/
COPY jobs/ jobs/
COPY models/ models/
RUN pip install . && rm -rf /src

RUN useradd --system --create-home --uid 10001 billing
USER billing
WORKDIR /home/billing

ENTRYPOINT ["billing"]
CMD ["--help"]
