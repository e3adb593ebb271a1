"""deploy/iam-policy.json, the worker's least-privilege IAM policy, against the code it serves.

The policy is written by hand, so these tests hold it to the activities' source: every ECS,
CloudWatch, ELBv2 and Application Auto Scaling operation they call is granted, nothing else
is, tags are allowed exactly where the worker tags what it creates, and parliament (the IAM
linter `make lint` runs) reports nothing but the two findings accepted on purpose.
"""

from __future__ import annotations

import ast
import json
import shlex
import subprocess
import warnings
from collections.abc import Iterator
from fnmatch import fnmatchcase
from functools import cache
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore import xform_name

ROOT = Path(__file__).resolve().parents[2]
POLICY_FILE = ROOT / "deploy" / "iam-policy.json"
ACTIVITIES = ROOT / "activities"
# The AWS services the activities call, by boto3 client name -> IAM prefix.
SERVICES = {
    "ecs": "ecs",
    "cloudwatch": "cloudwatch",
    "elbv2": "elasticloadbalancing",
    "application-autoscaling": "application-autoscaling",
}
CLUSTER_ARN = "arn:aws:ecs:us-east-1:123456789012:cluster/ecs-canary"
# Granted although no activity calls them by name: ECS authorizes the tags of a create
# (CreateService, RegisterTaskDefinition with `tags`) as TagResource, and a task definition's
# roles as PassRole.
IMPLIED = {"ecs:TagResource", "iam:PassRole"}
# What parliament may report on the policy, muted in deploy/parliament.yaml (see docs/iam.md).
ACCEPTED_FINDINGS = {
    ("RESOURCE_STAR", ("ecs:ListTasks",)),
    ("PERMISSIONS_MANAGEMENT_ACTIONS", ("iam:passrole",)),
}


def _policy() -> dict[str, Any]:
    policy: dict[str, Any] = json.loads(POLICY_FILE.read_text())
    return policy


def _statements() -> list[dict[str, Any]]:
    return _policy()["Statement"]


def _listed(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def _granted() -> set[str]:
    return {action for s in _statements() for action in _listed(s["Action"])}


@cache
def _operations_by_method() -> dict[str, set[str]]:
    """boto3 method name -> the IAM actions it may be, e.g. `describe_alarms` ->
    {`cloudwatch:DescribeAlarms`} (a name in both services' models stands for both)."""
    session = botocore.session.get_session()
    methods: dict[str, set[str]] = {}
    for client_name, prefix in SERVICES.items():
        for operation in session.get_service_model(client_name).operation_names:
            methods.setdefault(xform_name(operation), set()).add(f"{prefix}:{operation}")
    return methods


def _activity_calls() -> Iterator[tuple[str, ast.Call]]:
    """(method name, call) of every `x.method(...)` and `x.get_paginator("method")` in the
    activities' source whose method is an operation of one of SERVICES."""
    methods = _operations_by_method()
    for path in sorted(ACTIVITIES.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            name = node.func.attr
            if name in ("get_paginator", "get_waiter") and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    name = first.value
            if name in methods:
                yield name, node


def _called() -> set[str]:
    return {action for name, _ in _activity_calls() for action in _operations_by_method()[name]}


def _passes_tags(call: ast.Call) -> bool:
    """A `tags=...` keyword, or `**{..., "tags": ...}`: the call creates a tagged resource."""
    for keyword in call.keywords:
        if keyword.arg == "tags":
            return True
        if keyword.arg is None and isinstance(keyword.value, ast.Dict):
            keys = keyword.value.keys
            if any(isinstance(k, ast.Constant) and k.value == "tags" for k in keys):
                return True
    return False


def _allows(action: str) -> list[dict[str, Any]]:
    return [
        s
        for s in _statements()
        if s["Effect"] == "Allow" and any(fnmatchcase(action, a) for a in _listed(s["Action"]))
    ]


def test_the_scan_finds_the_calls_the_worker_is_known_to_make():
    """Guards the scan itself: an AST walk that found nothing would pass everything below."""
    called = _called()
    assert {"ecs:CreateService", "ecs:DescribeServices", "ecs:ListTasks"} <= called
    assert {"cloudwatch:DescribeAlarms", "cloudwatch:GetMetricData"} <= called
    assert {
        "elasticloadbalancing:ModifyRule",
        "application-autoscaling:RegisterScalableTarget",
    } <= (called)


def test_every_operation_the_activities_call_is_allowed():
    missing = sorted(action for action in _called() if not _allows(action))
    assert not missing, f"deploy/iam-policy.json does not allow {missing}"


def test_the_policy_grants_nothing_the_worker_does_not_call():
    extra = sorted(_granted() - _called() - IMPLIED)
    assert not extra, f"deploy/iam-policy.json grants {extra}, which no activity calls"
    assert not any("*" in action for action in _granted()), "actions are named, not wildcards"


def test_tags_are_allowed_only_on_the_creates_that_pass_them():
    tagging = {
        action.split(":", 1)[1]
        for name, call in _activity_calls()
        if _passes_tags(call)
        for action in _operations_by_method()[name]
    }
    (statement,) = _allows("ecs:TagResource")
    allowed = set(_listed(statement["Condition"]["StringEquals"]["ecs:CreateAction"]))
    assert allowed == tagging == {"CreateService", "RegisterTaskDefinition"}


@cache
def _iam_privileges() -> dict[str, dict[str, Any]]:
    """parliament's copy of AWS's Service Authorization Reference: `ecs:RunTask` -> its entry."""
    with warnings.catch_warnings():  # parliament loads its data with pkg_resources at import
        warnings.simplefilter("ignore")
        import parliament
    return {
        f"{service['prefix']}:{privilege['privilege']}": privilege
        for service in parliament.iam_definition
        if service["prefix"] in {"ecs", "cloudwatch", "iam"}
        for privilege in service["privileges"]
    }


def _supports_condition(action: str, key: str) -> bool:
    privilege = _iam_privileges()[action]
    return any(key in resource["condition_keys"] for resource in privilege["resource_types"])


def test_each_ecs_statement_is_held_to_the_cluster_where_ecs_supports_it():
    for statement in _statements():
        actions = _listed(statement["Action"])
        if not all(a.startswith("ecs:") and _supports_condition(a, "ecs:cluster") for a in actions):
            continue
        condition = statement.get("Condition", {}).get("ArnEquals", {})
        assert condition.get("ecs:cluster") == CLUSTER_ARN, statement["Sid"]


def test_scaling_is_changed_only_for_ecs_services_desired_counts():
    """RegisterScalableTarget cannot be scoped to one service by ARN (a scalable target's id is
    opaque): the namespace and dimension hold it to ECS services' desired counts."""
    (statement,) = _allows("application-autoscaling:RegisterScalableTarget")
    assert statement["Condition"]["StringEquals"] == {
        "application-autoscaling:service-namespace": "ecs",
        "application-autoscaling:scalable-dimension": "ecs:service:DesiredCount",
    }


def test_the_roles_are_passed_only_to_ecs_tasks():
    (statement,) = _allows("iam:PassRole")
    passed_to = statement["Condition"]["StringEquals"]["iam:PassedToService"]
    assert passed_to == "ecs-tasks.amazonaws.com"
    assert all(":role/" in arn for arn in _listed(statement["Resource"]))


def test_parliament_reports_only_the_findings_accepted_on_purpose():
    """Without deploy/parliament.yaml: what its mutes hide must be exactly these two."""
    _iam_privileges()  # imports parliament quietly
    from parliament import analyze_policy_string

    policy = analyze_policy_string(
        POLICY_FILE.read_text(), str(POLICY_FILE), include_community_auditors=True
    )
    found = set()
    for finding in policy.findings:
        detail = finding.detail or finding.location.get("actions", [])
        found.add((finding.issue, tuple(sorted(detail))))
    assert found == ACCEPTED_FINDINGS


def _lint_command() -> list[str]:
    """The parliament command of the Makefile's `lint` target, as make runs it."""
    recipe = (ROOT / "Makefile").read_text().split("\nlint:", 1)[1].split("\n\n", 1)[0]
    joined = recipe.replace("\\\n", " ")
    (line,) = [line for line in joined.splitlines() if "/parliament " in line]
    return shlex.split(line.strip().replace("$(BIN)", str(ROOT / ".venv" / "bin")))


@pytest.mark.checker
def test_make_lint_runs_parliament_and_it_reports_no_finding():
    done = subprocess.run(
        _lint_command(),
        cwd=ROOT,
        stdin=subprocess.DEVNULL,  # as under CI: no terminal
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
