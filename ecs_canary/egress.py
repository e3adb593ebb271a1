"""Where the worker's own requests (`http` steps, webhooks) may connect.

The worker runs with an IAM role, and the EC2 and ECS metadata endpoints hand its credentials
to whoever asks from the instance: link-local 169.254.0.0/16 (169.254.169.254, and the ECS
task endpoint 169.254.170.2), fe80::/10, and the EC2 IPv6 endpoint fd00:ec2::254. A request's
URL is the deployer's, so an `http` step with `expect_body_contains` could read those
credentials one guess at a time. These ranges are refused unless the platform policy's
`egress.allow` names them; `egress.deny` refuses more (ecs_canary.policy).

The check applies to the address actually connected to: the host is resolved once, checked,
and the connection goes to that very address (TLS still checks the certificate against the
host name), so a name that resolves elsewhere on a second lookup (DNS rebinding) gains nothing.
Proxies from the environment are not used (an httpx client given its transport mounts none):
the address checked would be the proxy's. Redirects are not followed by either caller.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any

import httpx

from ecs_canary.policy import POLICY_FILE_ENV, EgressPolicy, PolicyError, read_policy

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Refused unless the policy's egress.allow names them: where instance credentials live.
CREDENTIAL_RANGES: dict[IpNetwork, str] = {
    ipaddress.ip_network("169.254.0.0/16"): "link-local, where the EC2 and ECS metadata live",
    ipaddress.ip_network("fe80::/10"): "link-local",
    ipaddress.ip_network("fd00:ec2::254/128"): "the EC2 metadata endpoint over IPv6",
}


_WHERE = f"{POLICY_FILE_ENV} egress"


class EgressRefused(Exception):
    """A request the egress policy refused, before any connection; the text names the address
    and the policy."""


def egress_refusal(address: IpAddress, policy: EgressPolicy) -> str | None:
    """Why the worker may not connect to `address`, or None."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:169.254.169.254 is 169.254.169.254
    for cidr in policy.deny:
        if address in ipaddress.ip_network(cidr):
            return f"{address} is in {cidr}, which the egress policy denies ({_WHERE}.deny)"
    if any(address in ipaddress.ip_network(cidr) for cidr in policy.allow):
        return None
    for network, what in CREDENTIAL_RANGES.items():
        if address in network:
            return (
                f"{address} is in {network} ({what}): the worker never connects there unless "
                f"the egress policy allows it ({_WHERE}.allow)"
            )
    return None


def current_egress_policy() -> EgressPolicy:
    """The egress part of the policy as the worker reads it now; EgressRefused (fail closed)
    when the policy file cannot be read."""
    try:
        return read_policy().egress
    except PolicyError as err:
        raise EgressRefused(f"no request is sent while the policy cannot be read: {err}") from None


def _choose(host: str, port: int, found: list[Any], policy: EgressPolicy) -> str:
    """The first address `host` resolved to, if the policy lets the worker connect there."""
    if not found:
        raise EgressRefused(f"{host} resolves to no address")
    address = ipaddress.ip_address(found[0][4][0].split("%")[0])
    refusal = egress_refusal(address, policy)
    if refusal is not None:
        shown = host if host == str(address) else f"{host} ({address})"
        raise EgressRefused(f"refused to connect to {shown} port {port}: {refusal}")
    return str(address)


def _pinned(request: httpx.Request, address: str) -> None:
    """Send `request` to `address`, keeping its Host header and TLS server name."""
    host = request.url.host
    if host != address:
        request.url = request.url.copy_with(host=address)
        request.extensions = {**request.extensions, "sni_hostname": host}


def _port(url: httpx.URL) -> int:
    return url.port or (443 if url.scheme == "https" else 80)


class EgressGuard(httpx.BaseTransport):
    """A transport that resolves each request's host once and connects only where the policy
    allows (see the module's docstring)."""

    def __init__(self, policy: EgressPolicy) -> None:
        self._policy = policy
        self._inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        host, port = request.url.host, _port(request.url)
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as err:
            raise httpx.ConnectError(f"cannot resolve {host}: {err}", request=request) from None
        _pinned(request, _choose(host, port, found, self._policy))
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


class AsyncEgressGuard(httpx.AsyncBaseTransport):
    """EgressGuard for an httpx.AsyncClient."""

    def __init__(self, policy: EgressPolicy) -> None:
        self._policy = policy
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host, port = request.url.host, _port(request.url)
        loop = asyncio.get_running_loop()
        try:
            found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as err:
            raise httpx.ConnectError(f"cannot resolve {host}: {err}", request=request) from None
        _pinned(request, _choose(host, port, list(found), self._policy))
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def guarded_client(**options: Any) -> httpx.Client:
    """An httpx.Client that connects only where the current egress policy allows."""
    return httpx.Client(transport=EgressGuard(current_egress_policy()), **options)


def guarded_async_client(**options: Any) -> httpx.AsyncClient:
    """An httpx.AsyncClient that connects only where the current egress policy allows."""
    return httpx.AsyncClient(transport=AsyncEgressGuard(current_egress_policy()), **options)
