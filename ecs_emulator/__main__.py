"""``python -m ecs_emulator``: serve until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
import gc
import logging
import signal
import sys
import threading
from dataclasses import asdict

from .server import start_emulator
from .settings import EmulatorSettings


def parse_args(argv: list[str] | None = None) -> EmulatorSettings:
    defaults = EmulatorSettings.from_env()
    parser = argparse.ArgumentParser(
        prog="python -m ecs_emulator",
        description="Local ECS emulator (moto + service scheduler). "
        "Every flag can also be set with ECS_EMULATOR_<FLAG> (e.g. ECS_EMULATOR_PORT).",
    )
    for name, value in asdict(defaults).items():
        parser.add_argument(
            "--" + name.replace("_", "-"),
            type=type(value),
            default=value,
            help=f"(default {value})",
        )
    return EmulatorSettings(**vars(parser.parse_args(argv)))


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    try:
        settings = parse_args(argv)
    except ValueError as exc:
        print(f"invalid settings: {exc}", file=sys.stderr)
        return 2
    # Handlers go in before "ready" is printed: a supervisor may send SIGTERM the moment it reads
    # that line, and an uninstalled handler would let the default action kill the process.
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    emulator = start_emulator(settings)
    # moto, botocore's models and the seeded state live as long as the process: frozen, they
    # stay out of the garbage collector's full passes, which walked all of them (0.3 s each).
    gc.freeze()
    seed = emulator.seed
    print(f"seeded VPC {seed['vpc_id']}")
    for subnet in seed["subnets"]:
        print(f"seeded subnet {subnet}")
    print(f"seeded security group {seed['security_group']}")
    print(f"seeded cluster {seed['cluster_arn']}")
    print(
        f"ECS emulator ready on {emulator.url} (cluster {seed['cluster']}, "
        f"subnets {','.join(seed['subnets'])}, security group {seed['security_group']})",
        flush=True,
    )
    while not stopping.wait(0.5):
        pass
    emulator.stop()
    print("ECS emulator stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
