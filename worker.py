"""Runs the ecs-canary worker: the deployment workflow, its ECS/CloudWatch activities and its
notifications."""

from __future__ import annotations

import asyncio
import signal
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import structlog
from temporalio.client import Client
from temporalio.worker import Worker

from activities.alarms import AlarmActivities
from activities.autoscaling import ScalingActivities
from activities.aws import AwsClients
from activities.decisions import verify_decision
from activities.ecs import EcsActivities
from activities.load_balancers import LoadBalancerActivities
from activities.notifications import send_notification
from activities.search_attributes import missing_search_attributes
from activities.verification_steps import VerificationActivities
from ecs_canary.codec import EncryptionCodec, PayloadKeyError
from ecs_canary.config import WorkerSettings
from ecs_canary.logs import configure_logging
from ecs_canary.sandbox import cache_workflow_bytecode
from ecs_canary.temporal import connect
from workflows.canary import EcsCanaryDeployment

# The SDK sends an activity's latest heartbeat to the server at most this often (otherwise only
# every 80% of its heartbeat timeout): the waits' live counts reach `status`, `watch` and the
# Web UI within this.
HEARTBEAT_SEND_INTERVAL = timedelta(seconds=2)


def build_worker(client: Client, settings: WorkerSettings, executor: ThreadPoolExecutor) -> Worker:
    clients = AwsClients(
        settings.ecs_calls_per_second, max_connections=settings.max_concurrent_activities
    )
    ecs, alarms = EcsActivities(clients), AlarmActivities(clients)
    steps = VerificationActivities(clients)
    balancers, scaling = LoadBalancerActivities(clients), ScalingActivities(clients)
    workflows = [EcsCanaryDeployment]
    cache_workflow_bytecode(workflows)
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=workflows,
        activities=[
            ecs.describe_services,
            ecs.describe_task_definition,
            ecs.register_task_definition,
            ecs.create_service,
            ecs.update_service,
            ecs.delete_service,
            ecs.wait_for_steady_state,
            ecs.wait_for_inactive,
            balancers.read_listener_rule,
            balancers.set_rule_actions,
            scaling.set_suspended_state,
            alarms.watch_alarms,
            steps.run_task_step,
            steps.http_step,
            steps.metrics_step,
            missing_search_attributes,
            send_notification,
            verify_decision,
        ],
        activity_executor=executor,
        max_concurrent_activities=settings.max_concurrent_activities,
        max_heartbeat_throttle_interval=HEARTBEAT_SEND_INTERVAL,
        graceful_shutdown_timeout=timedelta(seconds=settings.graceful_shutdown_seconds),
    )


def payload_protection(client: Client) -> str:
    """For the startup line: whether this worker writes encrypted payloads, and with which key
    (its id; never key material)."""
    codec = client.data_converter.payload_codec
    if isinstance(codec, EncryptionCodec):
        return f"encrypted with key {codec.keys.active} from {codec.keys.source}"
    return "not encrypted (ECS_CANARY_PAYLOAD_KEY_FILE is not set)"


async def main() -> None:
    configure_logging()
    settings = WorkerSettings.from_env()
    try:
        client = await connect()
    except PayloadKeyError as err:  # the key file's own words, not a traceback
        raise SystemExit(f"worker: {err}") from None
    with ThreadPoolExecutor(max_workers=settings.max_concurrent_activities) as executor:
        worker = build_worker(client, settings, executor)
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        structlog.get_logger("worker").info(
            "Worker started",
            task_queue=settings.task_queue,
            namespace=client.namespace,
            payloads=payload_protection(client),
        )
        async with worker:
            await stop.wait()
            structlog.get_logger("worker").info("Shutting down: finishing running activities")


if __name__ == "__main__":
    asyncio.run(main())
