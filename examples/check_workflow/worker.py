"""A worker for your own checks: runs CanarySmokeCheck and its activity on their own task queue.

    python worker.py                       # from this folder; or python path/to/worker.py

Connection: Temporal's environment configuration, as the `temporal` CLI and the ecs-canary
worker read it (TEMPORAL_ADDRESS, default localhost:7233; TEMPORAL_NAMESPACE, default
"default"; TEMPORAL_API_KEY, TLS certificates, or a TEMPORAL_PROFILE from temporal.toml).
Task queue: CHECK_TASK_QUEUE, default "qa-checks": the `task_queue` of the request's
`workflow` step. Stop it with Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal

# check.py and probe.py sit beside this file: `python worker.py` (or `python
# path/to/worker.py`) puts this folder first on sys.path.
from check import CanarySmokeCheck
from probe import http_probe
from temporalio.client import Client
from temporalio.envconfig import ClientConfigProfile
from temporalio.worker import Worker

DEFAULT_TASK_QUEUE = "qa-checks"


async def connect() -> Client:
    profile = ClientConfigProfile.load(profile=os.environ.get("TEMPORAL_PROFILE"))
    config = profile.to_client_connect_config()
    config.setdefault("target_host", "localhost:7233")
    return await Client.connect(**config)


async def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    task_queue = os.environ.get("CHECK_TASK_QUEUE") or DEFAULT_TASK_QUEUE
    client = await connect()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[CanarySmokeCheck],
        activities=[http_probe],
    ):
        logging.info(
            "check worker polling task queue %s (namespace %s)", task_queue, client.namespace
        )
        await stop.wait()
        logging.info("shutting down")


if __name__ == "__main__":
    asyncio.run(main())
