"""Notifications end to end: the real worker posts to local receivers while a deployment runs on
the emulator. Each receiver gets each event once and in order, with the commands and the Web UI
link; a secret URL (`url_env`) never reaches the history; a receiver that is down neither delays
nor fails the deployment, and `status` shows what was not delivered."""

from __future__ import annotations

import base64
import json
import time
from typing import Any
from urllib.parse import quote

import pytest

from ecs_canary.models import DeploymentStatus
from tests.helpers import existing_service, status, wait_for_stage, wait_until, webhook_receiver
from workflows.notifications import FINAL_WAIT

SECRET_PATH = "/services/T0AB12CD3/B0AB12CD3/secret-token-q8dsa9d8a7sd9a8sd7"
UI = "http://ui.test:8233"


async def _history_text(handle) -> str:
    """The run's history as JSON, with every payload decoded (payloads are base64 there)."""
    history = (await handle.fetch_history()).to_json_dict()
    decoded: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "data" and isinstance(value, str):
                    decoded.append(base64.b64decode(value).decode(errors="replace"))
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(history)
    return json.dumps(history) + "\n".join(decoded)


async def test_each_receiver_gets_each_event_once_in_order_with_the_commands_and_the_link(
    worker, requests, ecs, deploy, monkeypatch
):
    existing_service(ecs, requests)
    with webhook_receiver() as slack, webhook_receiver() as hook:
        monkeypatch.setenv("ECS_CANARY_WEBHOOK_DEPLOYS", hook.url(SECRET_PATH))
        monkeypatch.setenv("TEMPORAL_UI_URL", UI)
        handle = await deploy(
            requests.raw(
                notifications=[
                    {"url": slack.url(), "format": "slack"},
                    {"url_env": "ECS_CANARY_WEBHOOK_DEPLOYS", "events": ["gate_open", "finished"]},
                ]
            )
        )
        await wait_for_stage(handle, "verification", gate_open=True, timeout=120)
        # People hear of the gate while it waits.
        await wait_until(lambda: len(slack.received) == 1 and len(hook.received) == 1)
        await handle.execute_update("approve", {"by": "alice"})
        result = await handle.result()
        final: DeploymentStatus = await status(handle)

    run_id = handle.result_run_id
    assert result.outcome == "succeeded"
    assert [r.body["text"] for r in slack.received] == [
        "myapp: the canary waits for approval on ecs-canary",
        "myapp: the canary was approved by alice",
        "myapp: the deployment succeeded",
    ]
    assert [r.headers["idempotency-key"] for r in slack.received] == [
        f"{handle.id}/{run_id}/{event}/0" for event in ("gate_open", "decided", "finished")
    ]
    gate_open = str(slack.received[0].body["blocks"])
    this_run = f"{handle.id} --run-id {run_id}"
    assert f"temporal workflow update execute --workflow-id {this_run} --name approve" in gate_open
    assert f'python starter.py reject {this_run} --by "$USER"' in gate_open
    link = f"{UI}/namespaces/default/workflows/{quote(handle.id, safe='')}/{run_id}/history"
    assert f"<{link}|Open the run in the Temporal Web UI>" in gate_open

    assert hook.events() == ["gate_open", "finished"]
    assert {r.path for r in hook.received} == {SECRET_PATH}
    finished = hook.received[-1].body
    assert finished["status"]["result"]["outcome"] == "succeeded"
    assert finished["status"]["result"]["canary_deleted"] is True
    assert finished["web_ui"] == link

    assert [(n.event, n.target, n.state) for n in final.notifications] == [
        ("gate_open", slack.url(), "sent"),
        ("gate_open", "$ECS_CANARY_WEBHOOK_DEPLOYS", "sent"),
        ("decided", slack.url(), "sent"),
        ("finished", slack.url(), "sent"),
        ("finished", "$ECS_CANARY_WEBHOOK_DEPLOYS", "sent"),
    ]
    assert "secret-token" not in await _history_text(handle)


@pytest.mark.slow
async def test_a_receiver_down_for_a_minute_neither_delays_nor_fails_the_deployment(
    worker, requests, ecs, deploy, logs
):
    existing_service(ecs, requests)
    with webhook_receiver() as receiver:
        back_at = time.monotonic() + 60
        receiver.respond = lambda _request: 500 if time.monotonic() < back_at else 200
        handle = await deploy(requests.raw(notifications=[{"url": receiver.url()}]))
        await wait_for_stage(handle, "verification", gate_open=True, timeout=120)
        await wait_until(lambda: len(receiver.received) >= 2)  # retried while the gate waits
        await handle.execute_update("approve", {"by": "alice"})
        result = await handle.result()
        closed = time.monotonic()
        final: DeploymentStatus = await status(handle)

    assert result.outcome == "succeeded"
    # On time: the rolling deploy followed the approval at once, and the run closed at most
    # the final wait after its last stage, long before the receiver came back.
    assert result.decision is not None
    rolling = next(t for t in result.stages if t.stage == "rolling_deploy")
    assert (rolling.started_at - result.decision.at).total_seconds() < 15
    assert closed < back_at
    assert not receiver.answered(200)
    assert {r.headers["idempotency-key"] for r in receiver.received} == {
        f"{handle.id}/{handle.result_run_id}/gate_open/0"
    }
    assert [(n.event, n.state) for n in final.notifications] == [
        ("gate_open", "failed"),
        ("decided", "failed"),
        ("finished", "failed"),
    ]
    assert final.notifications[0].error.startswith("not delivered when the deployment finished")
    assert final.notifications[-1].settled_at is not None
    last_stage_end = max(t.ended_at for t in result.stages if t.ended_at is not None)
    waited = (final.notifications[-1].settled_at - last_stage_end).total_seconds()
    assert waited <= FINAL_WAIT.total_seconds() + 5
    assert any(line.startswith("Notification gate_open to ") for line in logs.lines())


async def test_a_missing_variable_is_shown_in_status_and_the_deployment_goes_on(
    worker, requests, ecs, deploy, monkeypatch
):
    existing_service(ecs, requests)
    monkeypatch.delenv("ECS_CANARY_WEBHOOK_NONE_SET", raising=False)
    handle = await deploy(
        requests.raw(
            notifications=[{"url_env": "ECS_CANARY_WEBHOOK_NONE_SET", "events": ["finished"]}],
            verification={"require_approval": False},
        )
    )
    result = await handle.result()
    final: DeploymentStatus = await status(handle)

    assert result.outcome == "succeeded"
    (notification,) = final.notifications
    assert (notification.event, notification.state, notification.attempts) == (
        "finished",
        "failed",
        1,
    )
    assert "no environment variable ECS_CANARY_WEBHOOK_NONE_SET" in (notification.error or "")
