"""`starter.py pause|resume|override_freeze ID` (and `train pause|resume|override_freeze ID`):
hold a deployment or a release train where it is, let it go on, or let it through the
platform's freeze windows.

Each is sent as the decisions are (`cli.commands.send_decision`: an Update that answers with
the run's status, or `--signal`; `--by`, `--reason`, `--key`, `--token`, `--run-id`), so the
same approver and signing rules apply. See README, "Pause, resume and freeze windows".
"""

from __future__ import annotations

import argparse

from temporalio.client import Client

from cli.commands import send_decision
from cli.format import paused_text
from ecs_canary.models import DeploymentStatus
from ecs_canary.train import TrainStatus

# The commands, with their help (a deployment's, and a release train's under `train`).
HOLD_COMMANDS = {
    "pause": "pause the run where it is (nothing moves, its timers stop) until resume",
    "resume": "resume a paused run; its timers go on with the time they had left",
    "override_freeze": "let the run go on through the platform's freeze windows",
}


async def hold(client: Client, args: argparse.Namespace) -> int:
    """`pause|resume|override_freeze ID` of a deployment."""
    _, current = await send_decision(client, args, DeploymentStatus, "status")
    return _accepted(args.command, args.workflow_id, current, train=False)


async def train_hold(client: Client, args: argparse.Namespace) -> int:
    """`train pause|resume|override_freeze ID`: as a deployment's, for the whole train (its
    deployments in flight are paused and resumed with it)."""
    as_hold = argparse.Namespace(**{**vars(args), "command": args.train_command})
    _, current = await send_decision(client, as_hold, TrainStatus, "train status")
    return _accepted(args.train_command, args.workflow_id, current, train=True)


def _accepted(
    action: str, workflow_id: str, current: DeploymentStatus | TrainStatus | None, train: bool
) -> int:
    if current is None:  # a signal: not confirmed (send_decision said where to look)
        return 0
    prefix = "train " if train else ""
    if action == "pause" and current.paused is not None:
        print(f"paused {paused_text(current.paused)}")
        print(f"resume it with: python starter.py {prefix}resume {workflow_id}")
    elif action == "resume":
        print("resumed: its timers go on with the time they had left")
    else:
        print("freeze windows overridden for this run: it goes on")
    print(f"see it with: python starter.py {prefix}status {workflow_id}")
    return 0
