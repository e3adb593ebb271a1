"""Where the worker's requests may connect (ecs_canary.egress): the metadata ranges refused
unless the policy allows them, more ranges denied by it, and the check made on the address
actually connected to (one resolution, no DNS rebinding). Every connection is recorded at the
socket, and none leaves loopback."""

from __future__ import annotations

import ipaddress
import json
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest

from ecs_canary.egress import (
    EgressRefused,
    egress_refusal,
    guarded_async_client,
    guarded_client,
)
from ecs_canary.policy import POLICY_FILE_ENV, EgressPolicy, PlatformPolicy, PolicyError
from ecs_canary.policy import read_policy as read_platform_policy
from tests.helpers import recording, serving
from tests.helpers.local_http import QuietHandler

NO_POLICY = EgressPolicy()


@pytest.mark.parametrize(
    "address",
    ["169.254.169.254", "169.254.170.2", "fe80::1", "fd00:ec2::254", "::ffff:169.254.169.254"],
)
def test_where_credentials_live_is_refused_by_default(address: str):
    refusal = egress_refusal(ipaddress.ip_address(address), NO_POLICY)
    assert refusal is not None and "ECS_CANARY_POLICY_FILE egress.allow" in refusal


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "10.1.2.3", "203.0.113.9"])
def test_other_addresses_are_left_to_the_network(address: str):
    assert egress_refusal(ipaddress.ip_address(address), NO_POLICY) is None


def test_the_policy_allows_a_metadata_range_and_denies_more():
    policy = EgressPolicy(allow=["169.254.170.2/32"], deny=["10.0.0.0/8"])
    assert egress_refusal(ipaddress.ip_address("169.254.170.2"), policy) is None
    assert egress_refusal(ipaddress.ip_address("169.254.169.254"), policy) is not None
    assert egress_refusal(ipaddress.ip_address("10.9.9.9"), policy) == (
        "10.9.9.9 is in 10.0.0.0/8, which the egress policy denies "
        "(ECS_CANARY_POLICY_FILE egress.deny)"
    )


class Hello(QuietHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.answer(200, f"hello {self.headers['Host']}".encode(), "text/plain")


def _resolving(monkeypatch: pytest.MonkeyPatch, *answers: str) -> list[str]:
    """`socket.getaddrinfo` answers `rebind.test` with each address in turn (DNS rebinding);
    returns the names looked up."""
    looked_up: list[str] = []
    real = socket.getaddrinfo
    remaining = list(answers)

    def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != "rebind.test":
            return real(host, port, *args, **kwargs)
        looked_up.append(host)
        address = remaining.pop(0) if len(remaining) > 1 else remaining[0]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return looked_up


def test_a_request_goes_to_the_one_address_that_was_checked(monkeypatch, tmp_path: Path):
    monkeypatch.delenv(POLICY_FILE_ENV, raising=False)
    looked_up = _resolving(monkeypatch, "127.0.0.1", "169.254.169.254")
    with serving(Hello) as base, recording(monkeypatch) as connections:
        port = int(base.rsplit(":", 1)[1])
        with guarded_client() as client:
            answer = client.get(f"http://rebind.test:{port}/")
    assert answer.text == f"hello rebind.test:{port}"  # the Host header is the name
    assert looked_up == ["rebind.test"]
    assert connections.attempts == [("127.0.0.1", port)]


def test_a_name_that_resolves_to_the_metadata_service_connects_nowhere(monkeypatch):
    monkeypatch.delenv(POLICY_FILE_ENV, raising=False)
    _resolving(monkeypatch, "169.254.169.254")
    with (
        recording(monkeypatch) as connections,
        guarded_client() as client,
        pytest.raises(EgressRefused) as refused,
    ):
        client.get("http://rebind.test/latest/meta-data/iam/security-credentials/")
    assert str(refused.value).startswith(
        "refused to connect to rebind.test (169.254.169.254) port 80: 169.254.169.254 is in "
        "169.254.0.0/16"
    )
    assert connections.attempts == []


async def test_the_async_client_refuses_the_same_addresses(monkeypatch):
    monkeypatch.delenv(POLICY_FILE_ENV, raising=False)
    with recording(monkeypatch) as connections:
        async with guarded_async_client() as client:
            with pytest.raises(EgressRefused, match=r"\[?fd00:ec2::254\]? port 80"):
                await client.post("http://[fd00:ec2::254]/hook", json={})
            with pytest.raises(httpx.ConnectError):  # loopback is left to the network
                await client.post("http://127.0.0.1:9/hook", json={})
    assert connections.attempts == [("127.0.0.1", 9)]


def test_a_policy_that_cannot_be_read_sends_nothing(monkeypatch, tmp_path: Path):
    (tmp_path / "policy.json").write_text('{"egress": {"allow": "everything"}}')
    monkeypatch.setenv(POLICY_FILE_ENV, str(tmp_path / "policy.json"))
    with pytest.raises(EgressRefused, match="no request is sent while the policy cannot be read"):
        guarded_client()


def test_the_policy_file_says_what_is_wrong_with_it(monkeypatch, tmp_path: Path):
    path = tmp_path / "policy.json"
    monkeypatch.setenv(POLICY_FILE_ENV, str(path))
    path.write_text(json.dumps({"approvers": ["alice"], "min_approvals": 2}))
    with pytest.raises(PolicyError, match="min_approvals is 2 but only 1 distinct approvers"):
        read_platform_policy()
    path.write_text(json.dumps({"egress": {"deny": ["10.0.0.1/8"]}, "approvers": ["a"]}))
    assert read_platform_policy() == PlatformPolicy(
        approvers=["a"], egress=EgressPolicy(deny=["10.0.0.0/8"])
    )
    monkeypatch.setenv("ECS_CANARY_REQUIRE_SIGNED_DECISIONS", "yes")
    assert read_platform_policy().require_signed_decisions  # the shorthand still works
