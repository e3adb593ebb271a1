"""Runs the ecs-canary worker: the deployment workflow, its ECS/CloudWatch activities and its
notifications."""

from __future__ import annotations

import asyncio
import signal
import sys
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import structlog
from temporalio.client import Client
from temporalio.worker import (
    PollerBehaviorSimpleMaximum,
    UnsandboxedWorkflowRunner,
    Worker,
    WorkflowRunner,
)
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from activities.alarms import AlarmActivities
from activities.analysis import AnalysisActivities
from activities.autoscaling import ScalingActivities
from activities.aws import AwsClients
from activities.cancellation import check_cancelled_only_where_chosen, stop_before_request
from activities.decisions import verify_decision
from activities.ecs import EcsActivities
from activities.load_balancers import LoadBalancerActivities
from activities.notifications import send_notification
from activities.polling import keep_alive
from activities.search_attributes import missing_search_attributes
from activities.shared_budget import SharedBudget
from activities.train import (
    ended_deployments,
    report_to_train,
    running_deployments,
    train_sent,
)
from activities.verification_steps import VerificationActivities
from ecs_canary.activation_pool import ActivationPool
from ecs_canary.codec import EncryptionCodec, PayloadKeyError
from ecs_canary.config import WorkerSettings
from ecs_canary.health_check import CHECK_FLAG, check
from ecs_canary.in_flight import worker_gauges
from ecs_canary.logs import configure_logging
from ecs_canary.policy import PolicyError, read_policy
from ecs_canary.process_exit import run_then_exit
from ecs_canary.replay_cost import freeze_startup_heap
from ecs_canary.sandbox import cache_workflow_bytecode
from ecs_canary.telemetry import serve_metrics
from ecs_canary.temporal import connect
from ecs_canary.versioning import deployment_config
from ecs_canary.warm_up import warming_up
from ecs_canary.watchdog import LoopWatchdog, ShutdownDeadline
from workflows.canary import EcsCanaryDeployment
from workflows.train import EcsReleaseTrain

# Every workflow the worker runs: a deployment, and a release train of deployments.
WORKFLOWS: list[type] = [EcsCanaryDeployment, EcsReleaseTrain]

# The SDK sends an activity's latest heartbeat to the server at most this often (otherwise only
# every 80% of its heartbeat timeout): the waits' live counts reach `status`, `watch` and the
# Web UI within this.
HEARTBEAT_SEND_INTERVAL = timedelta(seconds=2)

# Runs the worker keeps in its cache (the SDK's default), and as many workflow task slots. A
# workflow task holds its slot while its local activities (every ECS call) wait for the ECS
# budget: with the SDK's 100 slots, a wave of more than 100 deployments per worker queued for
# the budget held them all, and every other task waited, a release train's own and every query
# to it (the train's `status` took 10 s, its sticky queue's timeout). A held slot uses no
# thread; one per cached run never keeps a cached run from its next task.
WORKFLOW_TASK_SLOTS = 1000
# Workflow task polls open at once (the SDK's default is 5, four of them on the sticky queue).
# Temporal hands a new workflow task to a poll that is waiting, and otherwise writes it to the
# task queue's backlog, which it reads back later: under a wave of a release train, with only a
# few polls open and each one busy taking the next task, the train's own task sat there for
# up to 4.75 s, and every `status` asked meanwhile waited for it.
WORKFLOW_TASK_POLLS = 20


def aws_clients(settings: WorkerSettings) -> AwsClients:
    return AwsClients(
        settings.ecs_calls_per_second,
        max_connections=settings.max_concurrent_activities,
        while_waiting=keep_alive,
        before_request=stop_before_request,
    )


def workflow_runner(settings: WorkerSettings) -> WorkflowRunner:
    """Temporal's sandbox re-imports the workflow's modules for every run and runs each
    activation, and each payload's conversion, through them: about a quarter of the worker's
    CPU under load (BENCHMARKS.md, "Where the worker's CPU goes"). What it guards against (a
    workflow that reads the clock or keeps global state) is checked where it cannot cost a
    deployment anything: the workflow tests run sandboxed, and every run the tests finish is
    replayed in the sandbox. ECS_CANARY_WORKFLOW_SANDBOX=true runs it here too."""
    if not settings.workflow_sandbox:
        return UnsandboxedWorkflowRunner()
    cache_workflow_bytecode(WORKFLOWS)
    return SandboxedWorkflowRunner()


def worker_activities(clients: AwsClients) -> list[Callable[..., Any]]:
    """Every activity the worker runs, each cancelled only where it chooses (checked here)."""
    ecs, alarms = EcsActivities(clients), AlarmActivities(clients)
    steps, analysis = VerificationActivities(clients), AnalysisActivities(clients)
    balancers, scaling = LoadBalancerActivities(clients), ScalingActivities(clients)
    activities: list[Callable[..., Any]] = [
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
        alarms.find_alarms,
        steps.run_task_step,
        steps.http_step,
        steps.metrics_step,
        analysis.judge_interval,
        missing_search_attributes,
        send_notification,
        verify_decision,
        running_deployments,
        ended_deployments,
        train_sent,
        report_to_train,
    ]
    check_cancelled_only_where_chosen(activities)
    return activities


def build_worker(
    client: Client,
    settings: WorkerSettings,
    executor: ThreadPoolExecutor,
    clients: AwsClients | None = None,
    workflows: list[type] = WORKFLOWS,
) -> Worker:
    """The worker; `workflows`: other workflow code under the same names, as another build of
    the worker would have (the Worker Versioning test's second build)."""
    # A few threads, queries and release trains first (ecs_canary.activation_pool); the SDK
    # leaves an executor it was given running, so its threads end with the worker object.
    activations = ActivationPool()
    worker = Worker(
        client,
        task_queue=settings.task_queue,
        workflows=workflows,
        workflow_runner=workflow_runner(settings),
        workflow_task_executor=activations,
        activities=worker_activities(clients or aws_clients(settings)),
        activity_executor=executor,
        max_concurrent_activities=settings.max_concurrent_activities,
        max_cached_workflows=WORKFLOW_TASK_SLOTS,
        max_concurrent_workflow_tasks=WORKFLOW_TASK_SLOTS,
        workflow_task_poller_behavior=PollerBehaviorSimpleMaximum(WORKFLOW_TASK_POLLS),
        max_heartbeat_throttle_interval=HEARTBEAT_SEND_INTERVAL,
        graceful_shutdown_timeout=timedelta(seconds=settings.graceful_shutdown_seconds),
        # No payload is stored outside the history: without this the SDK's pass that would
        # fetch such payloads starts a task per payload of an activation, a third of decoding
        # one with 10,000 signals (ecs_canary.replay_cost).
        max_workflow_task_external_storage_concurrency=1,
        deployment_config=deployment_config(settings.version),
    )
    weakref.finalize(worker, activations.shutdown, wait=False)
    return worker


def shared_budget(
    client: Client, settings: WorkerSettings, clients: AwsClients
) -> SharedBudget | None:
    """With ECS_CANARY_SHARED_ECS_CALLS_PER_SECOND, this worker's share of that one budget."""
    if settings.shared_ecs_calls_per_second is None:
        return None
    budget = settings.shared_ecs_calls_per_second
    return SharedBudget(client, settings.task_queue, budget, clients.ecs_budget)


def payload_protection(client: Client) -> str:
    """For the startup line: whether this worker writes encrypted payloads, and with which key
    (its id; never key material)."""
    codec = client.data_converter.payload_codec
    if isinstance(codec, EncryptionCodec):
        return f"encrypted with key {codec.keys.active} from {codec.keys.source}"
    return "not encrypted (ECS_CANARY_PAYLOAD_KEY_FILE is not set)"


def worker_version(settings: WorkerSettings) -> str:
    """For the startup line: the Worker Deployment Version this worker runs as."""
    if settings.version is None:
        return "unversioned (ECS_CANARY_BUILD_ID is not set)"
    return f"build {settings.version.build_id} of {settings.version.deployment_name}, pinned"


async def until_stopped(stop: asyncio.Event, sharing: SharedBudget | None) -> None:
    """Until `stop` is set, following the shared budget if there is one. A share no longer
    followed would hold every call at its last rate (at first, none): if following fails, the
    worker stops with the error (SystemExit) instead of holding its deployments silently."""
    if sharing is None:
        await stop.wait()
        return
    following = asyncio.create_task(sharing.run())
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait({following, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if not following.done():
        following.cancel()
        return
    error = following.exception()
    structlog.get_logger("worker").error(
        "Shutting down: the shared ECS budget stopped following the workers", error=repr(error)
    )
    raise SystemExit(f"worker: the shared ECS budget stopped following the workers: {error!r}")


async def main() -> None:
    configure_logging()
    await serve(WorkerSettings.from_env(sys.argv[1:]))


async def serve(settings: WorkerSettings) -> None:
    try:
        read_policy()  # read again by every run and decision; a typo stops the worker here
        if settings.metrics_address is not None:
            serve_metrics(settings.metrics_address)  # the runtime the client below then uses
        client = await connect(worker=True)
    except (PayloadKeyError, PolicyError) as err:  # the file's own words, not a traceback
        raise SystemExit(f"worker: {err}") from None
    # Watched from here on: a worker stopped by its settings above has no loop to speak of,
    # and its one line of error stays the only thing it prints.
    watchdog = LoopWatchdog(asyncio.get_running_loop(), settings.watchdog_seconds).start()
    try:
        await run_worker(client, settings)
    finally:
        watchdog.stop()


async def run_worker(client: Client, settings: WorkerSettings) -> None:
    with ThreadPoolExecutor(max_workers=settings.max_concurrent_activities) as executor:
        clients = aws_clients(settings)
        sharing = shared_budget(client, settings, clients)
        if sharing is not None:
            await sharing.check_access()
        worker = build_worker(client, settings, executor, clients)
        freeze_startup_heap()  # a replay's garbage collections skip what the worker keeps
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        structlog.get_logger("worker").info(
            "Worker started",
            task_queue=settings.task_queue,
            namespace=client.namespace,
            payloads=payload_protection(client),
            version=worker_version(settings),
        )
        deadline = ShutdownDeadline(settings.graceful_shutdown_seconds)
        # Its open runs cached in the background: `status` answers at once after a restart.
        async with worker, worker_gauges(client, settings), warming_up(worker):
            try:
                await until_stopped(stop, sharing)
                structlog.get_logger("worker").info(
                    "Shutting down: finishing running activities",
                    deadline_seconds=deadline.seconds,
                )
            finally:
                deadline.start()  # bounds the SDK's shutdown as the block ends
        deadline.cancel()


if __name__ == "__main__":
    if CHECK_FLAG in sys.argv[1:]:  # the container's health check (ecs_canary/health_check.py)
        run_then_exit(check)
    run_then_exit(lambda: asyncio.run(main()))
