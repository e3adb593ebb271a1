"""Signed decisions as people make them: `starter.py keygen` makes an approver's key, the
platform team puts its JWK in the JWKS file the worker trusts (ECS_CANARY_APPROVER_KEYS),
and decisions arrive signed through `starter.py approve --key` and as IdP tokens through
`temporal workflow update execute` and `starter.py reject --token`/$ECS_CANARY_ID_TOKEN.
Each refusal is shown both ways: a token replayed on a later run of the same service, one
person's key signing as another, an IdP key on a worker that names no issuer."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

from cli.approver_keys import load_private_key, sign_decision
from cli.runs import RunOf
from ecs_canary.signing import ISSUER_ENV, KEYS_ENV, jwks
from tests.helpers import (
    STARTER_USER,
    existing_service,
    temporal_cli,
    wait_for_stage,
)
from tests.helpers.signing import ISSUER, Approver

# The company's IdP: its tokens are passed on as they are.
IDP = Approver("idp-2026", "RS256")


async def _cli_update(client, workflow_id: str, payload: dict[str, str], name: str = "approve"):
    """`temporal workflow update execute --name approve --input '{...}'`, as a person types it."""
    return await temporal_cli(
        client,
        "workflow",
        "update",
        "execute",
        "--workflow-id",
        workflow_id,
        "--name",
        name,
        "--input",
        json.dumps(payload),
    )


async def _keygen(starter, folder: Path, name: str) -> tuple[Path, dict]:
    """`starter.py keygen NAME`: the private key file and the public JWK it printed."""
    made = await starter.run("keygen", str(folder / name))
    assert made.code == 0, made.err
    return folder / f"{name}.pem", json.loads(made.out)


async def test_signed_decisions_from_the_starter_and_the_temporal_cli(
    client, worker, requests, ecs, deploy, starter, tmp_path: Path, monkeypatch
):
    existing_service(ecs, requests)
    key_file, public_jwk = await _keygen(starter, tmp_path, STARTER_USER)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert public_jwk["sub"] == STARTER_USER
    trusted = tmp_path / "approvers.json"
    trusted.write_text(jwks(public_jwk, IDP.jwk))
    monkeypatch.setenv(KEYS_ENV, str(trusted))  # the worker runs in this process
    monkeypatch.setenv(ISSUER_ENV, ISSUER)

    request = requests.raw(verification={"require_signed_decisions": True, "min_approvals": 2})
    handle = await deploy(request)
    await wait_for_stage(handle, "verification", gate_open=True, timeout=120)
    wid = handle.id

    run_id = handle.result_run_id
    unsigned = await _cli_update(client, wid, {"by": "alice"})
    assert unsigned.code != 0
    assert "a signed decision is required by this deployment's request" in unsigned.err
    other_action = await _cli_update(
        client, wid, {"token": IDP.token(wid, "reject", run_id=run_id)}
    )
    assert other_action.code != 0
    assert "the token is for 'reject', not 'approve'" in other_action.err

    signed = await starter.run("approve", wid, "--key", str(key_file), "--reason", "flat")
    assert signed.code == 0, signed.err
    assert signed.lines[0] == f"approve run {run_id} of {wid}"
    assert f"approve by {STARTER_USER} recorded; approvals so far: {STARTER_USER} (1 of 2)" in (
        signed.out
    )
    now = int(time.time())
    expired = IDP.token(wid, "reject", sub="bob", iat=now - 900, exp=now - 300, run_id=run_id)
    late = await starter.run("reject", wid, env={**starter.env, "ECS_CANARY_ID_TOKEN": expired})
    assert late.code == 1 and late.err.startswith("reject refused: the token expired at ")

    accepted = await _cli_update(client, wid, {"token": IDP.token(wid, sub="alice", run_id=run_id)})
    assert accepted.code == 0, accepted.err
    result = await handle.result()

    assert result.outcome == "succeeded"
    assert result.decision is not None
    assert (result.decision.by, result.decision.signed) == ("alice", True)
    assert result.decision.approvals == [STARTER_USER, "alice"]
    audit = [(a.action, a.by, a.accepted, a.signed) for a in result.attempts]
    assert audit == [
        ("approve", None, False, False),  # the token for another action: it proves nobody
        ("approve", STARTER_USER, True, True),
        ("reject", None, False, False),  # expired
        ("approve", "alice", True, True),
    ]


async def test_a_token_replayed_on_a_later_run_of_the_service_is_refused(
    client, worker, requests, ecs, deploy, starter, monkeypatch, tmp_path: Path
):
    """The workflow id is the same for every deployment of a service: whoever may start runs
    and signal, but holds no key, cannot resend an approver's earlier token to a new run."""
    existing_service(ecs, requests)
    monkeypatch.setenv(KEYS_ENV, str(tmp_path / "approvers.json"))
    monkeypatch.setenv(ISSUER_ENV, ISSUER)
    (tmp_path / "approvers.json").write_text(jwks(IDP.jwk))
    request = requests.raw(verification={"require_signed_decisions": True})
    first = await deploy(request)
    await wait_for_stage(first, "verification", gate_open=True, timeout=120)
    token = IDP.token(first.id, sub="alice", run_id=first.result_run_id)
    once = {"token": token}
    assert (await _cli_update(client, first.id, once)).code == 0
    assert (await first.result()).outcome == "succeeded"

    later = await deploy(request)
    await wait_for_stage(later, "verification", gate_open=True, timeout=120)
    refused = f"the token is for run {first.result_run_id}, not {later.result_run_id}"
    by_cli = await _cli_update(client, later.id, once)
    assert by_cli.code != 0 and refused in by_cli.err
    by_starter = await starter.run("approve", later.id, "--token", token)
    assert (by_starter.code, by_starter.err.strip()) == (1, f"approve refused: {refused}")
    # --run-id pins the run a decision was typed for: a changed deployment is not decided.
    pinned = await starter.run("reject", later.id, "--run-id", first.result_run_id or "")
    assert pinned.code == 1
    assert f"run {first.result_run_id} is not the current run of {later.id}" in pinned.err
    status = await starter.run("status", later.id, "--json")
    assert '"gate_open": true' in status.out and '"decision": null' in status.out
    await later.signal(
        "reject", {"token": IDP.token(later.id, "reject", run_id=later.result_run_id)}
    )
    assert (await later.result()).outcome == "rejected"


async def test_one_persons_key_never_signs_for_another(
    client, worker, requests, ecs, deploy, starter, monkeypatch, tmp_path: Path
):
    """Bob's key signing as Alice is refused through the starter and the Temporal CLI, so
    with min_approvals 2 Bob alone never makes two approvals; an IdP's key (no `sub`) verifies
    nothing on a worker that names no issuer, and says why."""
    existing_service(ecs, requests)
    alice_file, alice = await _keygen(starter, tmp_path, "alice")
    bob_file, bob = await _keygen(starter, tmp_path, "bob")
    (tmp_path / "approvers.json").write_text(jwks(alice, bob, IDP.jwk))
    monkeypatch.setenv(KEYS_ENV, str(tmp_path / "approvers.json"))
    monkeypatch.delenv(ISSUER_ENV, raising=False)
    handle = await deploy(requests.raw(verification={"min_approvals": 2}))
    await wait_for_stage(handle, "verification", gate_open=True, timeout=120)
    wid, run = handle.id, RunOf(handle.id, handle.result_run_id or "")

    assert (await starter.run("approve", wid, "--key", str(bob_file))).code == 0
    as_alice = await starter.run("approve", wid, "--key", str(bob_file), "--by", "alice")
    impostor = "the token is signed by 'bob''s key"
    assert as_alice.code == 1 and impostor in as_alice.err
    forged = sign_decision(load_private_key(str(bob_file)), "alice", run, "approve")
    by_cli = await _cli_update(client, wid, {"token": forged})
    assert by_cli.code != 0 and impostor in by_cli.err
    no_issuer = "names no owner (no 'sub' member, as an identity provider's keys) and this "
    idp = IDP.token(wid, sub="alice", run_id=run.run_id)
    by_starter = await starter.run("approve", wid, "--token", idp)
    assert by_starter.code == 1 and no_issuer in by_starter.err
    idp_by_cli = await _cli_update(client, wid, {"token": idp})
    assert idp_by_cli.code != 0 and no_issuer in idp_by_cli.err

    assert (await starter.run("approve", wid, "--key", str(alice_file))).code == 0
    result = await handle.result()
    assert result.outcome == "succeeded"
    assert result.decision is not None and result.decision.approvals == ["bob", "alice"]
    # The audit names only verified subjects: nobody is recorded as Alice but Alice.
    assert [(a.by, a.accepted) for a in result.attempts] == [
        ("bob", True),
        (None, False),
        (None, False),
        (None, False),
        (None, False),
        ("alice", True),
    ]
