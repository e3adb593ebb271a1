# ecs-canary images. The default (last) stage is the worker; `--target emulator` builds
# the local ECS emulator. Both are configured only through environment variables.
FROM python:3.11.14-slim-bookworm AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Runtime dependencies first, read from pyproject.toml, so code edits reuse this layer.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY worker.py starter.py ./
COPY ecs_canary/ ecs_canary/
COPY workflows/ workflows/
COPY activities/ activities/
COPY cli/ cli/
# The project itself (what `pip install .` installs: no ECS emulator), without re-resolving (or
# adding the dev extra's) dependencies; and its bytecode, which Temporal's sandbox loads for
# every workflow run (the image cannot write it).
RUN pip install --no-deps . \
    && python -m compileall -q worker.py starter.py ecs_canary workflows activities cli \
    && groupadd --system --gid 10001 ecs-canary \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin ecs-canary

# Local ECS emulator: moto's server is a dev-extra dependency, pinned in pyproject.toml. The
# emulator is not part of the installed project: it is copied into /app, the working directory,
# where `python -m ecs_emulator` finds it (as `make up` does from the repository root).
FROM base AS emulator
RUN python -c "import tomllib; print('\n'.join(d for d in tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['dev'] if d.startswith('moto')))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt
COPY ecs_emulator/ ecs_emulator/
RUN python -m compileall -q ecs_emulator
USER 10001:10001
EXPOSE 5000
CMD ["python", "-m", "ecs_emulator", "--host", "0.0.0.0"]

# The Temporal worker (default target). Exec form so SIGTERM reaches Python directly
# and the worker can drain in-flight activities before exiting.
FROM base AS worker
USER 10001:10001
# Healthy only while the worker could work: its Temporal namespace answers, its AWS credentials
# resolve, its policy and key files parse (ecs_canary/health_check.py; one line and exit 1
# within 10 s otherwise). deploy/worker.cfn.yaml gives ECS the same check.
HEALTHCHECK --interval=30s --timeout=15s --start-period=60s --retries=3 \
    CMD ["python", "worker.py", "--check"]
CMD ["python", "worker.py"]
