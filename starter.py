"""Start and steer ECS canary deployments: `python starter.py --help` (see docs/starter.md).

Connection settings come from Temporal's environment configuration (TEMPORAL_ADDRESS,
TEMPORAL_NAMESPACE, profiles); the task queue from TEMPORAL_TASK_QUEUE or --task-queue.

This file only parses the arguments and turns every failure into one stderr line and an exit
code (a public contract); the commands themselves are the `cli` package.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from cli import codec_options, commands, hold, signing, train
from cli.errors import CliError
from cli.format import one_line
from ecs_canary.names import TASK_QUEUE
from ecs_canary.process_exit import exit_with
from ecs_canary.secret_names import secret_names_warning
from ecs_canary.temporal import connect


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="starter.py", description=__doc__.splitlines()[0])
    top.add_argument("--task-queue", help=f"default: $TEMPORAL_TASK_QUEUE or {TASK_QUEUE}")
    sub = top.add_subparsers(dest="command", required=True)
    deploy = sub.add_parser("deploy", help="start a deployment from a JSON request file")
    deploy.add_argument("file")
    deploy.add_argument("--wait", action="store_true", help="follow it and print the result")
    deploy.add_argument("--workflow-id", help="default: ecs-canary/<cluster>/<service_name>")
    deploy.add_argument("--task-queue", default=argparse.SUPPRESS)
    for action in ("approve", "reject"):
        decision_parser(sub, action, f"{action} the canary at the verification gate")
    for action, help_text in hold.HOLD_COMMANDS.items():
        decision_parser(sub, action, f"{help_text} (a deployment)")
    keygen = sub.add_parser("keygen", help="make a key to sign decisions; prints its JWK")
    keygen.add_argument("name", help="the private key goes to NAME.pem (mode 0600)")
    status = sub.add_parser("status", help="where a deployment stands")
    status.add_argument("workflow_id")
    status.add_argument("--json", action="store_true", help="the DeploymentStatus as JSON")
    pending = sub.add_parser(
        "pending", help="deployments waiting at the verification gate, and paused runs"
    )
    pending.add_argument("--service", help="only this ECS service")
    watch = sub.add_parser("watch", help="follow a deployment live until it ends")
    watch.add_argument("workflow_id")
    history = sub.add_parser("history", help="recent deployments of a service")
    history.add_argument("service")
    history.add_argument("--cluster")
    history.add_argument("--limit", type=int, default=10)
    analysis = sub.add_parser("analysis", help="a run's canary analysis, a table per interval")
    analysis.add_argument("workflow_id")
    analysis.add_argument(
        "--html", metavar="FILE", help="also write a report with a chart per metric"
    )
    codec_options.add_arguments(sub)
    trains = sub.add_parser("train", help="release trains: many services in waves")
    train_sub = trains.add_subparsers(dest="train_command", required=True)
    start = train_sub.add_parser("start", help="start a release train from a JSON file")
    start.add_argument("file")
    start.add_argument("--wait", action="store_true", help="follow it and print the result")
    start.add_argument("--task-queue", default=argparse.SUPPRESS)
    train_status = train_sub.add_parser("status", help="where a release train stands")
    train_status.add_argument("workflow_id")
    train_status.add_argument("--json", action="store_true", help="the TrainStatus as JSON")
    train_watch = train_sub.add_parser("watch", help="follow a release train until it ends")
    train_watch.add_argument("workflow_id")
    for action in ("approve", "reject"):
        decision_parser(train_sub, action, f"{action} every canary of the train's current wave")
    for action, help_text in hold.HOLD_COMMANDS.items():
        decision_parser(train_sub, action, f"{help_text} (a release train and its wave)")
    return top


def decision_parser(sub: Any, action: str, help_text: str) -> None:
    """`approve` / `reject` of a deployment or of a release train: the same options."""
    decide = sub.add_parser(action, help=help_text)
    decide.add_argument("workflow_id")
    decide.add_argument("--by", help="who decides (default: $USER, else your login name)")
    decide.add_argument("--reason")
    decide.add_argument("--signal", action="store_true", help="fire-and-forget signal")
    decide.add_argument("--run-id", help="decide this run only (default: the current one, printed)")
    signed = decide.add_mutually_exclusive_group()
    signed.add_argument(
        "--key", metavar="FILE", help="sign it for this run with your key (keygen NAME)"
    )
    signed.add_argument(
        "--token", help=f"send your IdP's token as is (default: ${signing.TOKEN_ENV})"
    )


async def run(args: argparse.Namespace) -> int:
    if args.command == "keygen":  # needs no Temporal
        from cli.approver_keys import keygen  # PyJWT and cryptography, for keys alone

        return keygen(args)
    request = commands.load_request(args.file) if args.command == "deploy" else None
    starting_train = args.command == "train" and args.train_command == "start"
    train_request = train.load_train(args.file) if starting_train else None
    deployments = [request] if request else train.deployments_of(train_request)
    for deployment in deployments:
        if warning := secret_names_warning(deployment):
            print(warning, file=sys.stderr)
    try:
        client = await connect()
    except RuntimeError as err:
        raise CliError(f"cannot reach Temporal at {commands.temporal_address()}: {err}") from None
    if request is not None:
        return await commands.deploy(client, args, request)
    if train_request is not None:
        return await train.start(client, args, train_request)
    if args.command == "train":
        if args.train_command in hold.HOLD_COMMANDS:
            return await hold.train_hold(client, args)
        return await train.TRAIN_COMMANDS[args.train_command](client, args)
    if args.command in hold.HOLD_COMMANDS:
        return await hold.hold(client, args)
    return await commands.COMMANDS[args.command](client, args)


def main() -> None:
    args = parser().parse_args()
    try:
        if args.command == "codec-server":
            from cli import codec_server  # its server, codec and JWT checks: this command's alone

            # It blocks and handles Ctrl-C and SIGTERM itself, outside asyncio.
            code = codec_server.run(args)
        else:
            code = asyncio.run(run(args))
    except CliError as err:
        print(one_line(err.message), file=sys.stderr)
        code = err.code
    except KeyboardInterrupt:
        print("interrupted (a started deployment keeps running)", file=sys.stderr)
        code = 130
    except Exception as err:  # one line, not a traceback, whatever went wrong
        print(f"error: {type(err).__name__}: {one_line(err)}", file=sys.stderr)
        code = 1
    exit_with(code)


if __name__ == "__main__":
    main()
