"""Signed decisions as people make them: `starter.py keygen` makes an approver's key, the
platform team puts its JWK in the JWKS file the worker trusts (ECS_CANARY_APPROVER_KEYS),
and decisions arrive signed through `starter.py approve --key` and as IdP tokens through
`temporal workflow update execute` and `starter.py reject --token`/$ECS_CANARY_ID_TOKEN."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

from ecs_canary.signing import KEYS_ENV, jwks
from tests.helpers import (
    STARTER_USER,
    existing_service,
    temporal_cli,
    wait_for_stage,
)
from tests.helpers.signing import Approver

# The company's IdP: its tokens are passed on as they are.
IDP = Approver("idp-2026", "RS256")


async def _cli_update(client, workflow_id: str, payload: dict[str, str]):
    """`temporal workflow update execute --name approve --input '{...}'`, as a person types it."""
    return await temporal_cli(
        client,
        "workflow",
        "update",
        "execute",
        "--workflow-id",
        workflow_id,
        "--name",
        "approve",
        "--input",
        json.dumps(payload),
    )


async def test_signed_decisions_from_the_starter_and_the_temporal_cli(
    client, worker, requests, ecs, deploy, starter, tmp_path: Path, monkeypatch
):
    existing_service(ecs, requests)
    made = await starter.run("keygen", str(tmp_path / "tester"))
    assert made.code == 0, made.err
    key_file = tmp_path / "tester.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    public_jwk = json.loads(made.out)
    trusted = tmp_path / "approvers.json"
    trusted.write_text(jwks(public_jwk, IDP.jwk))
    monkeypatch.setenv(KEYS_ENV, str(trusted))  # the worker runs in this process

    request = requests.raw(verification={"require_signed_decisions": True, "min_approvals": 2})
    handle = await deploy(request)
    await wait_for_stage(handle, "verification", gate_open=True, timeout=120)
    wid = handle.id

    unsigned = await _cli_update(client, wid, {"by": "alice"})
    assert unsigned.code != 0
    assert "a signed decision is required by this deployment's request" in unsigned.err
    other_action = await _cli_update(client, wid, {"token": IDP.token(wid, "reject")})
    assert other_action.code != 0
    assert "the token is for 'reject', not 'approve'" in other_action.err

    signed = await starter.run("approve", wid, "--key", str(key_file), "--reason", "flat")
    assert signed.code == 0, signed.err
    assert f"approve by {STARTER_USER} recorded; approvals so far: {STARTER_USER} (1 of 2)" in (
        signed.out
    )
    now = int(time.time())
    expired = IDP.token(wid, "reject", sub="bob", iat=now - 900, exp=now - 300)
    late = await starter.run("reject", wid, env={**starter.env, "ECS_CANARY_ID_TOKEN": expired})
    assert late.code == 1 and late.err.startswith("reject refused: the token expired at ")

    accepted = await _cli_update(client, wid, {"token": IDP.token(wid, sub="alice")})
    assert accepted.code == 0, accepted.err
    result = await handle.result()

    assert result.outcome == "succeeded"
    assert result.decision is not None
    assert (result.decision.by, result.decision.signed) == ("alice", True)
    assert result.decision.approvals == [STARTER_USER, "alice"]
    audit = [(a.action, a.by, a.accepted, a.signed) for a in result.attempts]
    assert audit == [
        ("approve", "alice", False, False),  # the token for another action
        ("approve", STARTER_USER, True, True),
        ("reject", "bob", False, False),  # expired
        ("approve", "alice", True, True),
    ]
