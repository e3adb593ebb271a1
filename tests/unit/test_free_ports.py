"""The tests' free ports (tests/helpers/processes.py) lie below the kernel's ephemeral range, so
no outgoing connection takes one as its local port between the moment a test picks it and the
moment its server binds it."""

from __future__ import annotations

import socket

import pytest

from tests.helpers import processes
from tests.helpers.processes import PORTS_HANDED_OUT, _ephemeral_start, free_ports


def test_free_ports_are_distinct_bindable_and_below_the_ephemeral_range():
    ports = free_ports(20)
    top = _ephemeral_start()

    assert len(set(ports)) == 20
    assert all(top - PORTS_HANDED_OUT <= port < top for port in ports)
    for port in ports:
        with socket.socket() as server:
            server.bind(("127.0.0.1", port))


def test_a_port_in_use_is_never_handed_out(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(processes, "PORTS_HANDED_OUT", 2)  # two candidates: top-2 and top-1
    top = _ephemeral_start()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", top - 2))
        assert free_ports(1) == [top - 1]
