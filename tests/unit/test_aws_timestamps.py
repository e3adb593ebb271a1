"""The workers' AWS clients read timestamps as botocore's own parser does: the same instant,
the same local wall-clock time (activities.aws.local_timestamp)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime

import botocore.utils
import pytest

from activities.aws import AwsClients, local_timestamp


@pytest.fixture(params=["UTC", "America/New_York", "Asia/Kolkata"])
def local_zone(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The worker's local time zone (DST in one of them)."""
    monkeypatch.setenv("TZ", request.param)
    time.tzset()
    yield request.param
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("local_zone")
@pytest.mark.parametrize(
    "value", [1_700_000_000, 1_700_000_000.123, 0, "2024-03-10T02:30:00Z", "2024-03-10T02:30:00"]
)
def test_the_same_instant_and_wall_clock_as_botocores_parser(value: int | float | str) -> None:
    ours, botocores = local_timestamp(value), botocore.utils.parse_timestamp(value)
    assert ours == botocores
    assert ours.utcoffset() == botocores.utcoffset()
    assert ours.strftime("%Y-%m-%d %H:%M:%S.%f") == botocores.strftime("%Y-%m-%d %H:%M:%S.%f")


def test_the_clients_parse_with_it() -> None:
    client = AwsClients(10).ecs("us-east-1")
    answer = b'{"services": [{"serviceName": "s", "createdAt": 1700000000.5}], "failures": []}'
    parsed = client._response_parser.parse(
        {"status_code": 200, "headers": {}, "body": answer},
        client.meta.service_model.operation_model("DescribeServices").output_shape,
    )["services"][0]["createdAt"]
    assert isinstance(parsed, datetime)
    assert parsed == local_timestamp(1_700_000_000.5)
