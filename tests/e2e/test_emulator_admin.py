"""The admin endpoint, throttling, and the ``python -m ecs_emulator`` entry point."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import pytest

from ecs_emulator import EmulatorAdmin, EmulatorAdminError, EmulatorSettings
from tests.helpers import (
    CLUSTER,
    REGION,
    ROOT,
    START_SECONDS,
    STOP_SECONDS,
    create_service,
    emulator_client,
    free_port,
    register,
    wait_stable,
    wait_until_sync,
)


def raw(url: str, method: str, body: bytes | None = None) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_info_reports_the_seeded_account(emulator: Any, ecs_state: dict[str, Any]) -> None:
    info = emulator.admin.info()
    assert info["cluster"] == CLUSTER and info["region"] == REGION
    assert info["account_id"] == "123456789012"
    assert info["vpc_id"].startswith("vpc-") and len(info["subnets"]) == 2
    assert info["security_group"].startswith("sg-")
    assert info["settings"] == {
        "task_start_seconds": START_SECONDS,
        "task_stop_seconds": STOP_SECONDS,
        "throttle_rate": 0.0,
        "health_check_seconds": EmulatorSettings().health_check_seconds,
        "traffic_rps": 0.0,
        "describe_services_delay_seconds": 0.0,
    }
    assert info["traffic"]["requests"] == 0
    ec2 = emulator_client(emulator.url, "ec2")
    assert ec2.describe_subnets(SubnetIds=info["subnets"])["Subnets"][0]["VpcId"] == info["vpc_id"]


def test_reset_leaves_a_usable_emulator(emulator: Any, ecs_state: dict[str, Any]) -> None:
    ecs = emulator_client(emulator.url)
    create_service(ecs, "before", register(ecs), 1)
    fresh = emulator.admin.reset()
    assert fresh["vpc_id"] != ecs_state["vpc_id"]
    assert ecs.list_services(cluster=CLUSTER)["serviceArns"] == []
    create_service(ecs, "after", register(ecs), 2)
    assert wait_stable(ecs, "after")["runningCount"] == 2


def test_settings_change_at_run_time_and_bad_values_are_refused(
    emulator: Any, ecs_state: dict[str, Any]
) -> None:
    changed = emulator.admin.settings(task_start_seconds=0.1)
    assert changed["task_start_seconds"] == 0.1
    for bad in ({"throttle_rate": 2}, {"task_start_seconds": "fast"}, {"colour": 1}):
        with pytest.raises(EmulatorAdminError, match="400"):
            emulator.admin.settings(**bad)
    assert emulator.admin.info()["settings"]["task_start_seconds"] == 0.1


def test_admin_errors_are_json_without_stack_traces(
    emulator: Any, ecs_state: dict[str, Any]
) -> None:
    status, body = raw(f"{emulator.url}/_emulator/nope", "GET")
    assert status == 404 and "error" in body
    status, body = raw(f"{emulator.url}/_emulator/settings", "POST", b"{not json")
    assert status == 400 and "JSON" in body["error"]
    status, body = raw(f"{emulator.url}/_emulator/info", "POST", b"{}")
    assert status == 405
    with pytest.raises(EmulatorAdminError, match="400"):
        emulator.admin.inject_fault("myapp", "explode")
    assert "Traceback" not in json.dumps(body)


def test_calls_are_counted_per_operation_and_reset(
    emulator: Any, ecs_state: dict[str, Any]
) -> None:
    ecs = emulator_client(emulator.url)
    assert emulator.admin.calls()["total"] == 0
    for _ in range(3):
        ecs.list_clusters()
    ecs.describe_clusters(clusters=[CLUSTER])
    emulator_client(emulator.url, "ec2").describe_vpcs()  # not ECS: not counted
    calls = emulator.admin.calls()
    assert calls["total"] == 4 and calls["throttled"] == 0
    assert calls["by_operation"] == {"ListClusters": 3, "DescribeClusters": 1}
    assert 1 <= calls["max_per_second"] <= 4
    seconds = [second for second, _ in calls["per_second"]]
    assert seconds == sorted(seconds) and all(isinstance(second, int) for second in seconds)
    by_second = Counter[str]()
    for _, counts in calls["per_second"]:
        by_second.update(counts)
    assert by_second == calls["by_operation"]
    emulator.admin.reset_calls()
    assert emulator.admin.calls()["total"] == 0
    assert emulator.admin.calls()["per_second"] == []


def test_a_call_counts_in_the_second_it_arrived_not_the_one_it_was_handled_in(
    emulator: Any, ecs_state: dict[str, Any]
) -> None:
    """The request line arrives, its headers only in the next second: the emulator handles
    the call a second later, as a stalled emulator would, and still counts it in the second
    it arrived (the kernel's receive time), where ECS would count it."""
    address = urlsplit(emulator.url)
    headers = (
        f"Host: {address.netloc}\r\n"
        "X-Amz-Target: AmazonEC2ContainerServiceV20141113.ListClusters\r\n"
        "Content-Type: application/x-amz-json-1.1\r\n"
        f"Authorization: AWS4-HMAC-SHA256 Credential=testing/20261207/{REGION}/ecs/aws4_request, "
        "SignedHeaders=host, Signature=0\r\n"
        "Content-Length: 2\r\n\r\n{}"
    )
    with socket.create_connection((address.hostname, address.port), timeout=10) as connection:
        before = time.time()
        connection.sendall(b"POST / HTTP/1.1\r\n")
        after = time.time()
        next_second = int(after) + 1
        # The delay is the scenario: the rest of the request comes in the next second.
        time.sleep(next_second + 0.05 - time.time())
        connection.sendall(headers.encode())
        answer = connection.makefile("rb").readline()
    assert answer.startswith(b"HTTP/1.1 200")
    calls = emulator.admin.calls()
    assert calls["by_operation"] == {"ListClusters": 1}
    [(second, _)] = calls["per_second"]
    assert int(before) <= second <= int(after) < next_second


def test_throttled_calls_are_retried_by_botocore_and_deployments_converge(
    emulator: Any, ecs_state: dict[str, Any]
) -> None:
    ecs = emulator_client(emulator.url, retries={"mode": "standard", "max_attempts": 10})
    emulator.admin.settings(throttle_rate=0.3)
    try:
        create_service(ecs, "throttled", register(ecs), 2)
        ecs.get_waiter("services_stable").wait(
            cluster=CLUSTER, services=["throttled"], WaiterConfig={"Delay": 0.2, "MaxAttempts": 100}
        )
        # Spread evenly: 3 calls in every 10 were throttled, each retried by botocore unseen.
        calls = emulator.admin.calls()
        assert calls["throttled"] > 0 and abs(calls["throttled"] - calls["total"] * 0.3) <= 1
        assert emulator.admin.info()["settings"]["throttle_rate"] == 0.3  # admin never throttled
    finally:
        emulator.admin.settings(throttle_rate=0.0)
    unretried = emulator_client(emulator.url, retries={"mode": "standard", "max_attempts": 1})
    emulator.admin.settings(throttle_rate=1.0)
    try:
        with pytest.raises(unretried.exceptions.ClientError) as throttled:
            unretried.list_clusters()
        assert throttled.value.response["Error"]["Code"] == "ThrottlingException"
        assert throttled.value.response["Error"]["Message"] == "Rate exceeded"
    finally:
        emulator.admin.settings(throttle_rate=0.0)


def test_cli_starts_prints_ready_and_stops_on_sigterm() -> None:
    port = free_port()
    env = {**os.environ, "ECS_EMULATOR_TASK_START_SECONDS": "0.1", "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "ecs_emulator", "--port", str(port), "--cluster", "cli"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = []
        while not lines or not lines[-1].startswith("ECS emulator ready"):
            line = process.stdout.readline()
            assert line, f"emulator exited early: {process.stderr.read()}"
            lines.append(line.strip())
        assert lines[-1].startswith(f"ECS emulator ready on http://127.0.0.1:{port} (cluster cli,")
        assert any(line.startswith("seeded security group sg-") for line in lines)
        info = EmulatorAdmin(f"http://127.0.0.1:{port}").info()
        assert info["cluster"] == "cli" and info["settings"]["task_start_seconds"] == 0.1
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_invalid_cli_settings_exit_with_an_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ecs_emulator", "--throttle-rate", "7", "--port", "0"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "throttle_rate" in result.stderr


def test_wait_until_reports_the_last_value() -> None:
    with pytest.raises(AssertionError, match="last value: 0"):
        wait_until_sync(lambda: 0, timeout=0.1)


def test_describe_services_is_answered_late_when_told(
    emulator: Any, ecs_state: dict[str, Any]
) -> None:
    """`describe_services_delay_seconds`: a stalled ECS for the cancellation chaos test; other
    operations answer at once."""
    ecs = emulator_client(emulator.url)
    emulator.admin.settings(describe_services_delay_seconds=1.5)
    try:
        began = time.monotonic()
        ecs.list_services(cluster=CLUSTER)
        listed = time.monotonic() - began
        ecs.describe_services(cluster=CLUSTER, services=["nothing"])
        described = time.monotonic() - began - listed
    finally:
        emulator.admin.settings(describe_services_delay_seconds=0)
    assert described >= 1.5 and listed < 1.5
    with pytest.raises(EmulatorAdminError, match="400"):
        emulator.admin.settings(describe_services_delay_seconds=-1)
