"""`make demo`: examples/request.json through all four stages on the local stack, unattended.

    python scripts/demo.py                 # the demo (the stack must be up: `make up`)
    python scripts/demo.py resolve FILE    # FILE with the emulator's ids -> $LOCAL_DIR/FILE
    python scripts/demo.py analysis        # the stack for examples/analysis*.json (README)

The demo resets the emulator (`POST /_emulator/reset`), so it works however often it runs;
it terminates a `myapp` deployment left open by an earlier try. Then it seeds `myapp` at an
older image, starts the deployment with the Temporal CLI, approves the gate with the same
`approve` signal a person would send, and prints the result. It leaves the stack running.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError  # noqa: E402

from cli.format import step_text  # noqa: E402
from ecs_canary.models import (  # noqa: E402
    DeploymentRequest,
    DeploymentResult,
    DeploymentStatus,
    Outcome,
)
from ecs_canary.names import TASK_QUEUE, WORKFLOW_TYPE, workflow_id_for  # noqa: E402
from ecs_canary.temporal import CLUSTER_SETTINGS, data_converter  # noqa: E402
from ecs_canary.web_ui import run_link  # noqa: E402

HOST = "127.0.0.1"
TEMPORAL_PORT = os.environ.get("TEMPORAL_PORT", "7233")
EMULATOR_URL = f"http://{HOST}:{os.environ.get('ECS_EMULATOR_PORT', '5000')}"
LOCAL_DIR = ROOT / os.environ.get("LOCAL_DIR", ".local")
TEMPORAL = os.path.relpath(Path(sys.executable).parent / "temporal", Path.cwd())
ADDRESS = f"{HOST}:{TEMPORAL_PORT}"
EXAMPLE = ROOT / "examples" / "request.json"
OLD_IMAGE = "nginx:1.26"
GATE_TIMEOUT = 120
ANALYSIS_EXAMPLES = (ROOT / "examples" / "analysis.json", ROOT / "examples" / "analysis-bad.json")
# With `weight_percent` 25 the canary and the baseline each get a quarter: 50 requests a second,
# so that 5 % of 5XX answers (`errors-5`) stand out from 0.1 % in 20 one-second periods.
ANALYSIS_TRAFFIC_RPS = 200
RESULT_TIMEOUT = 300


def placeholders(seed: dict[str, Any]) -> dict[str, str]:
    """What the examples' placeholders stand for in the emulator's seeded account."""
    subnet_1, subnet_2 = seed["subnets"]
    return {
        "<emulator-subnet-1>": subnet_1,
        "<emulator-subnet-2>": subnet_2,
        "<emulator-security-group>": seed["security_group"],
    }


def resolve(value: Any, seed: dict[str, Any], arns: dict[str, str] | None = None) -> Any:
    """A copy of an example request with the emulator's ids in place of the placeholders, and
    its load balancer ARNs replaced by `arns` (the example's ARN -> the emulator's)."""
    return replaced(value, {**placeholders(seed), **(arns or {})})


def replaced(value: Any, names: dict[str, str]) -> Any:
    """A copy of `value` with every string that is a key of `names` replaced by its value."""
    if isinstance(value, dict):
        return {key: replaced(item, names) for key, item in value.items()}
    if isinstance(value, list):
        return [replaced(item, names) for item in value]
    return names.get(value, value) if isinstance(value, str) else value


def emulator(path: str, method: str = "GET", body: dict[str, Any] | None = None) -> dict[str, Any]:
    request = urllib.request.Request(f"{EMULATOR_URL}/_emulator/{path}", method=method)
    data = json.dumps(body or {}).encode() if method == "POST" else None
    try:
        with urllib.request.urlopen(request, data=data) as answer:
            return json.load(answer)
    except urllib.error.URLError as err:
        reason = getattr(err, "reason", err)
        raise SystemExit(f"no ECS emulator at {EMULATOR_URL} ({reason}); run `make up`") from None


def write_resolved(example: Path, seed: dict[str, Any], arns: dict[str, str] | None = None) -> Path:
    request = resolve(json.loads(example.read_text()), seed, arns)
    DeploymentRequest.model_validate(request)
    LOCAL_DIR.mkdir(parents=True, exist_ok=True)
    target = LOCAL_DIR / example.name
    target.write_text(json.dumps(request, indent=2) + "\n")
    return target


def step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def run(*args: str) -> str:
    """Run a command, showing it first exactly as it could be typed."""
    print(f"$ {shlex.join(args)}", flush=True)
    # The CLI would also read a developer's temporal.toml profile or API key: not for this stack.
    env = {k: v for k, v in os.environ.items() if k not in CLUSTER_SETTINGS}
    env["TEMPORAL_CONFIG_FILE"] = os.devnull
    done = subprocess.run(args, capture_output=True, text=True, env=env)
    print(done.stdout.rstrip(), flush=True)
    if done.returncode != 0:
        raise SystemExit(f"{done.stderr.rstrip()}\n{args[0]} exited with {done.returncode}")
    return done.stdout


def aws(service: str, request: dict[str, Any]) -> Any:
    """A boto3 client of the emulator, in the request's region."""
    return boto3.client(
        service,
        endpoint_url=EMULATOR_URL,
        region_name=request.get("region") or "us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def seed_existing_service(request: dict[str, Any], ecs: Any = None) -> None:
    """myapp as an earlier release left it, so the rolling deploy updates a real service
    (`ecs`: a client of the emulator; by default the local stack's)."""
    ecs = ecs or aws("ecs", request)
    task_definition = json.loads(json.dumps(request["task_definition"]))
    for container in task_definition["containerDefinitions"]:
        container["image"] = OLD_IMAGE
    arn = ecs.register_task_definition(**task_definition)["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(
        cluster=request["cluster"],
        serviceName=request["service_name"],
        taskDefinition=arn,
        **request["service_definition"],
    )
    ecs.get_waiter("services_stable").wait(
        cluster=request["cluster"],
        services=[request["service_name"]],
        WaiterConfig={"Delay": 1, "MaxAttempts": 60},
    )
    print(f"{request['service_name']} runs {arn.rsplit('/', 1)[-1]} ({OLD_IMAGE}), steady")


async def wait_for_gate(handle: Any) -> DeploymentStatus:
    deadline = time.monotonic() + GATE_TIMEOUT
    while time.monotonic() < deadline:
        status: DeploymentStatus = await handle.query("status", result_type=DeploymentStatus)
        if status.gate_open:
            return status
        if status.outcome is not None:
            failed = [step_text(s) for s in status.verification_steps if s.state == "failed"]
            raise SystemExit(
                f"the deployment finished before its gate opened: {status.outcome.value}"
                + "".join(f"\n  {line}" for line in failed)
            )
        await asyncio.sleep(0.5)
    raise SystemExit(f"the gate did not open within {GATE_TIMEOUT}s")


async def follow_log(workflow_id: str, offset: int) -> None:
    """Print the worker's log lines for this deployment as they come: the stages in Harness's
    words. Runs until cancelled."""
    log = LOCAL_DIR / "worker.log"
    pending = ""
    while True:
        with log.open() as stream:
            stream.seek(offset)
            pending += stream.read()
            offset = stream.tell()
        *lines, pending = pending.split("\n")
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("workflow_id") == workflow_id:
                # Verification step activities log their step rather than a stage.
                where = entry.get("stage") or (f"verify {entry['step']}" if "step" in entry else "")
                print(f"  [{where:>14}] {entry.get('event')}", flush=True)
        await asyncio.sleep(0.2)


async def demo() -> int:
    started = time.monotonic()
    raw = json.loads(EXAMPLE.read_text())
    workflow_id = workflow_id_for(raw["cluster"], raw["service_name"])
    client = await Client.connect(ADDRESS, data_converter=data_converter())

    handle = client.get_workflow_handle(workflow_id)
    try:
        open_run = (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    except Exception:  # no run with this id yet
        open_run = False
    if open_run:
        step(f"Terminating the open deployment {workflow_id} left by an earlier try")
        run(TEMPORAL, "workflow", "terminate", "--workflow-id", workflow_id,
            "--reason", "superseded by make demo", "--address", ADDRESS)  # fmt: skip

    step(f"Resetting the ECS emulator (POST {EMULATOR_URL}/_emulator/reset)")
    seed = emulator("reset", "POST")
    print(f"cluster {seed['cluster']}, subnets {', '.join(seed['subnets'])}, "
          f"security group {seed['security_group']}")  # fmt: skip
    request_file = write_resolved(EXAMPLE, seed)
    request = json.loads(request_file.read_text())

    step(f"Seeding service {request['service_name']} at the previous release")
    seed_existing_service(request)

    log_offset = (LOCAL_DIR / "worker.log").stat().st_size
    step(f"Starting the deployment ({EXAMPLE.relative_to(ROOT)} with the emulator's ids: "
         f"{os.path.relpath(request_file)})")  # fmt: skip
    run(TEMPORAL, "workflow", "start", "--task-queue", TASK_QUEUE, "--type", WORKFLOW_TYPE,
        "--workflow-id", workflow_id, "--input-file", os.path.relpath(request_file),
        "--address", ADDRESS)  # fmt: skip
    handle = client.get_workflow_handle(workflow_id, result_type=DeploymentResult)
    handle = client.get_workflow_handle(
        workflow_id, run_id=(await handle.describe()).run_id, result_type=DeploymentResult
    )
    follower = asyncio.ensure_future(follow_log(workflow_id, log_offset))
    try:
        result = await approve_and_wait(handle, workflow_id)
    finally:
        await asyncio.sleep(0.5)  # the run's last log lines
        follower.cancel()
    if result is None:
        return 1

    step("Result")
    print(json.dumps(result.model_dump(mode="json"), indent=2))
    print(f"\nWeb UI: {run_link(client.namespace, workflow_id, handle.run_id)}")
    print(f"Outcome: {result.outcome.value} in {time.monotonic() - started:.0f}s")
    print_try_it_yourself(workflow_id, os.path.relpath(request_file))
    return 0 if result.outcome == Outcome.SUCCEEDED else 1


async def approve_and_wait(handle: Any, workflow_id: str) -> DeploymentResult | None:
    """Open the gate once it waits for a decision; the result, or None if the run failed."""
    status = await wait_for_gate(handle)
    if status.verification_steps:
        step("Verification steps (run against the steady canary before the gate opened)")
        for verification_step in status.verification_steps:
            print(step_text(verification_step))
    step("The verification gate is open; approving it as a person would")
    decision = json.dumps(
        {"by": "demo", "reason": "canary healthy in the demo"}, separators=(",", ":")
    )
    run(TEMPORAL, "workflow", "signal", "--workflow-id", workflow_id, "--name", "approve",
        "--input", decision, "--address", ADDRESS)  # fmt: skip

    step("Waiting for the canary delete and the rolling deploy")
    try:
        return await asyncio.wait_for(handle.result(), RESULT_TIMEOUT)
    except WorkflowFailureError as err:
        print(f"deployment failed: {err.cause}", file=sys.stderr)
        details = getattr(err.cause, "details", None)
        if details:
            print(json.dumps(details[0], indent=2, default=str), file=sys.stderr)
        return None


def print_try_it_yourself(workflow_id: str, request_file: str) -> None:
    py = os.path.relpath(sys.executable)
    print(f"""
Try the gate yourself (the stack is still up; `make down` stops it):
  {TEMPORAL} workflow start --task-queue {TASK_QUEUE} --type {WORKFLOW_TYPE} \\
      --workflow-id {workflow_id} --input-file {request_file} --address {ADDRESS}
  {TEMPORAL} workflow query --workflow-id {workflow_id} --name status --address {ADDRESS}
  {TEMPORAL} workflow signal --workflow-id {workflow_id} --name approve \\
      --input '{{"by":"you","reason":"looks good"}}' --address {ADDRESS}
  {TEMPORAL} workflow signal --workflow-id {workflow_id} --name reject \\
      --input '{{"by":"you","reason":"error rate up"}}' --address {ADDRESS}
or with the starter (TEMPORAL_ADDRESS={ADDRESS}):
  {py} starter.py approve {workflow_id}
A first deployment (the service does not exist yet):
  {py} scripts/demo.py resolve examples/first-deployment.json""")


def set_up_balancer(elbv2: Any, seed: dict[str, Any], request: dict[str, Any]) -> dict[str, str]:
    """The weighted canary's load balancer, as a platform team would have it: an Application
    Load Balancer named as in the request's listener rule ARN, a target group for each group
    the request names (the service's, the canary's and the baseline's), and a listener whose
    default action forwards everything to the service's group (the others weighted 0, so the
    balancer knows them). Returns each of the request's ARNs -> the emulator's."""
    traffic = request["canary"]["traffic"]
    groups = [
        request["service_definition"]["loadBalancers"][0]["targetGroupArn"],
        traffic["canary_target_group_arn"],
        request["verification"]["analysis"]["baseline_target_group_arn"],
    ]
    rule = traffic["listener_rule_arn"]
    balancer = elbv2.create_load_balancer(
        Name=rule.split(":listener-rule/app/", 1)[1].split("/", 1)[0],
        Subnets=seed["subnets"],
        SecurityGroups=[seed["security_group"]],
    )["LoadBalancers"][0]["LoadBalancerArn"]
    arns = {}
    for group in groups:
        name = group.split(":targetgroup/", 1)[1].split("/", 1)[0]
        arns[group] = created = elbv2.create_target_group(
            Name=name, Protocol="HTTP", Port=80, VpcId=seed["vpc_id"], TargetType="ip"
        )["TargetGroups"][0]["TargetGroupArn"]
        elbv2.modify_target_group_attributes(  # AWS's default keeps a target for 300 s
            TargetGroupArn=created,
            Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "0"}],
        )
    weights = [{"TargetGroupArn": arns[group], "Weight": 0} for group in groups]
    weights[0]["Weight"] = 100
    listener = elbv2.create_listener(
        LoadBalancerArn=balancer,
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": weights}}],
    )["Listeners"][0]["ListenerArn"]
    (default,) = elbv2.describe_rules(ListenerArn=listener)["Rules"]
    arns[rule] = default["RuleArn"]
    return arns


def analysis_stack() -> int:
    """A fresh emulator with the analysis examples' load balancer and `myapp` at the previous
    release behind it, with enough traffic that the judge tells an `errors-5` canary within
    its first 20-second interval; writes both examples with the emulator's ids and ARNs."""
    step(f"Resetting the ECS emulator; {ANALYSIS_TRAFFIC_RPS} requests per second")
    seed = emulator("reset", "POST")
    emulator("settings", "POST", {"traffic_rps": ANALYSIS_TRAFFIC_RPS})
    good, bad = ANALYSIS_EXAMPLES
    example = resolve(json.loads(good.read_text()), seed)
    arns = set_up_balancer(aws("elbv2", example), seed, example)
    for theirs, ours in arns.items():
        print(f"{theirs.rsplit(':', 1)[-1]} -> {ours}")
    written = [write_resolved(path, seed, arns) for path in ANALYSIS_EXAMPLES]
    step(f"Seeding service {example['service_name']} at the previous release, behind the balancer")
    seed_existing_service(json.loads(written[0].read_text()))
    print("\n".join(os.path.relpath(path) for path in written))
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["resolve"] and len(argv) == 2:
        print(os.path.relpath(write_resolved(Path(argv[1]), emulator("info"))))
        return 0
    if argv == ["analysis"]:
        return analysis_stack()
    if argv:
        print(__doc__, file=sys.stderr)
        return 2
    return asyncio.run(demo())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
