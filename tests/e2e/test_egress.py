"""No egress to where credentials live: an `http` step aimed at the EC2 metadata service fails
with nothing sent and a summary that names the address and the egress policy, a webhook aimed
at the ECS credentials endpoint is a failed delivery in `status`, and `url_env` may name only
ECS_CANARY_WEBHOOK_* variables. Deployments start through `starter.py` and the `temporal` CLI.

The worker runs in this process with every socket connection recorded (tests.helpers.
connections): the proof is that no connection to those addresses was attempted, and a
connection off loopback could not leave this machine anyway."""

from __future__ import annotations

from typing import Any

import pytest

from ecs_canary.names import workflow_id_for
from tests.helpers import (
    assert_failed_at_once,
    cli_start,
    recording,
    request_file,
    status,
)

METADATA = "169.254.169.254"
ECS_CREDENTIALS = "169.254.170.2"


def _aimed_at_credentials(requests: Any) -> dict[str, Any]:
    step = {
        "name": "metadata",
        "type": "http",
        "url": f"http://{METADATA}/latest/meta-data/iam/security-credentials/",
        "expect_body_contains": "AccessKeyId",
        "requests": 3,
        "interval_seconds": 0,
        "timeout_seconds": 10,
    }
    webhook = {"url": f"http://{ECS_CREDENTIALS}/v2/credentials", "events": ["finished"]}
    return requests.raw(
        verification={"require_approval": False, "steps": [step]}, notifications=[webhook]
    )


async def test_steps_and_webhooks_never_connect_to_the_metadata_service(
    client, worker, task_queue, requests, ecs, starter, runs, monkeypatch, tmp_path
):
    request = _aimed_at_credentials(requests)
    wid = workflow_id_for(request["cluster"], request["service_name"])
    with recording(monkeypatch) as connections:
        followed = await starter.run("deploy", starter.request_file(request), "--wait")
        by_starter = await runs.track(wid)
        by_cli = await cli_start(
            client, task_queue, f"{wid}-cli", "--input-file", request_file(tmp_path, request)
        )
        assert by_cli.code == 0, by_cli.err
        from_cli = await runs.track(f"{wid}-cli")
        for handle in (by_starter, from_cli):
            assert (await handle.result()).outcome == "rejected"
        finals = [await status(handle) for handle in (by_starter, from_cli)]

    assert followed.code == 0, followed.err
    assert connections.to(METADATA) == [] and connections.to(ECS_CREDENTIALS) == []
    for final in finals:
        (step,) = final.verification_steps
        assert step.state == "failed"
        assert step.summary == (
            f"nothing sent: refused to connect to {METADATA} port 80: {METADATA} is in "
            "169.254.0.0/16 (link-local, where the EC2 and ECS metadata live): the worker never "
            "connects there unless the egress policy allows it (ECS_CANARY_POLICY_FILE "
            "egress.allow)"
        )
        (delivery,) = final.notifications
        assert (delivery.state, delivery.attempts) == ("failed", 1)
        assert f"nothing sent: refused to connect to {ECS_CREDENTIALS} port 80" in (
            delivery.error or ""
        )
    assert "refused to connect to 169.254.169.254" in followed.out


@pytest.mark.parametrize("name", ["AWS_SECRET_ACCESS_KEY", "ECS_CANARY_PAYLOAD_KEY_FILE"])
async def test_url_env_names_only_webhook_variables(
    name, client, worker, task_queue, requests, starter, runs, tmp_path
):
    request = requests.raw(notifications=[{"url_env": name}])
    refused = (
        f"url_env may only name a variable whose name starts with ECS_CANARY_WEBHOOK_, got '{name}'"
    )
    started = await starter.run("deploy", starter.request_file(request))
    assert started.code == 2 and refused in started.err
    wid = f"{workflow_id_for(request['cluster'], request['service_name'])}-cli"
    by_cli = await cli_start(
        client, task_queue, wid, "--input-file", request_file(tmp_path, request)
    )
    assert by_cli.code == 0, by_cli.err
    assert refused in await assert_failed_at_once(await runs.track(wid), "InvalidRequest")
