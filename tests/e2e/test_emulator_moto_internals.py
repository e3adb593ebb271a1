"""Fails loudly when a moto upgrade breaks what ecs_emulator.moto_internals relies on."""

from __future__ import annotations

import inspect

import moto
from botocore import xform_name
from botocore.session import get_session
from moto.cloudwatch.models import CloudWatchBackend, MetricDatum
from moto.cloudwatch.responses import CloudWatchResponse
from moto.core.serialize import AttributePickerContext, XFormedAttributePicker
from moto.core.utils import get_service_model
from moto.ec2.models import ec2_backends
from moto.ecs.models import Cluster, Container, EC2ContainerServiceBackend, Service, Task
from moto.elbv2.models import FakeTargetGroup, elbv2_backends

from ecs_emulator import moto_cloudwatch, moto_elbv2, moto_internals, moto_serializer

CONTAINERS = [{"name": "web", "image": "nginx:1", "memory": 128}]


def _emulated_task(cluster: Cluster, definition: object, backend: object, **extra: object):
    """A task as the emulator's scheduler creates one for service `s`."""
    return moto_internals._EmulatedTask(
        cluster=cluster,
        task_definition=definition,
        container_instance_arn=None,
        resource_requirements=None,
        backend=backend,
        group="service:s",
        **extra,
    )


def test_pinned_moto_version() -> None:
    assert moto.__version__ == moto_internals.SUPPORTED_MOTO_VERSION, (
        "moto changed: re-check every name in ecs_emulator/moto_internals.py, then bump "
        "SUPPORTED_MOTO_VERSION"
    )


def test_wsgi_and_reset_entry_points_exist() -> None:
    assert callable(moto_internals.moto_wsgi_app())
    assert inspect.isclass(moto_internals.moto_request_handler())
    assert callable(moto_internals.moto_api_backend.reset)


def test_task_constructor_takes_the_arguments_we_pass() -> None:
    parameters = inspect.signature(Task.__init__).parameters
    for name in (
        "cluster",
        "task_definition",
        "container_instance_arn",
        "resource_requirements",
        "backend",
        "group",
        "launch_type",
        "started_by",
        "platform_version",
    ):
        assert name in parameters, name
    assert issubclass(moto_internals._EmulatedTask, Task)


def test_model_attributes_exist() -> None:
    backend = EC2ContainerServiceBackend("us-east-1", "123456789012")
    for name in moto_internals.BACKEND_ATTRIBUTES:
        assert hasattr(backend, name), name
    cluster = Cluster("c", "123456789012", "us-east-1")
    backend.clusters["c"] = cluster
    for name in moto_internals.CLUSTER_ATTRIBUTES:
        assert hasattr(cluster, name), name
    definition = backend.register_task_definition("f", CONTAINERS)
    service = Service(cluster, "s", 1, backend, task_definition=definition)
    for name in moto_internals.SERVICE_ATTRIBUTES:
        assert hasattr(service, name), name
    task = _emulated_task(cluster, definition, backend, started_by="ecs-svc/1")
    for name in moto_internals.TASK_ATTRIBUTES:
        assert hasattr(task, name), name
    assert isinstance(task.containers[0], Container)
    for name in moto_internals.CONTAINER_ATTRIBUTES:
        assert hasattr(task.containers[0], name), name


def test_emulated_task_status_is_not_advanced_by_moto() -> None:
    backend = EC2ContainerServiceBackend("us-east-1", "123456789012")
    cluster = Cluster("c", "123456789012", "us-east-1")
    definition = backend.register_task_definition("f", CONTAINERS)
    task = _emulated_task(cluster, definition, backend)
    task.last_status = "PENDING"
    for _ in range(3):
        task.advance()
    assert task.last_status == "PENDING"


def test_service_lookup_key_format() -> None:
    """find_service relies on moto keying services as '<cluster>:<name>'."""
    backend = EC2ContainerServiceBackend("us-east-1", "123456789012")
    backend.create_cluster("c")
    definition = backend.register_task_definition("f", CONTAINERS)
    backend.create_service("c", "s", 0, task_definition_str=definition.arn)
    assert list(backend.services) == ["c:s"]


def test_describe_services_serializes_the_attributes_the_scheduler_publishes() -> None:
    """moto renders each member of ECS's Service shape from the snake_case attribute."""
    shape = get_session().get_service_model("ecs").shape_for("Service")
    members = {xform_name(name) for name in shape.members}
    for name in moto_internals.SERVICE_PUBLISHED_ATTRIBUTES:
        assert name in members, name


def test_the_remembered_attribute_names_are_motos_own() -> None:
    """moto_serializer remembers the names moto's picker tries for each member of a shape:
    for every member of a described service (and of its deployments), the same names in the
    same order as moto's own method, asked again and again."""
    backend = EC2ContainerServiceBackend("us-east-1", "123456789012")
    cluster = Cluster("c", "123456789012", "us-east-1")
    definition = backend.register_task_definition("f", CONTAINERS)
    service = Service(cluster, "s", 1, backend, task_definition=definition)
    model = get_service_model("ecs")
    picker = XFormedAttributePicker()
    checked = 0
    for obj, parent in ((service, "Service"), ({"id": "d"}, "Deployment")):
        shape = model.shape_for(parent)
        for key, member in shape.members.items():
            member.parent = shape  # as moto's serializer sets it
            context = AttributePickerContext(
                obj=obj, key=key, shape=member, service_model=model, key_path="services"
            )
            expected = list(moto_serializer._ORIGINAL(picker, context))
            for _ in range(2):
                assert list(moto_serializer._remembered_keys(picker, context)) == expected, key
            checked += 1
    assert checked > 20
    assert callable(getattr(XFormedAttributePicker, moto_serializer.REPLACED_PICKER_METHOD))
    assert isinstance(picker.alias_providers, list)


# An account of its own: these ELBv2 backends are moto's process-global ones (found by ARN),
# and must not meet the emulator's seeded account should both run in one process.
ELB_ACCOUNT = "999999999999"


def _target_group(name: str) -> FakeTargetGroup:
    vpc = ec2_backends[ELB_ACCOUNT]["us-east-1"].create_vpc("10.0.0.0/16")
    backend = elbv2_backends[ELB_ACCOUNT]["us-east-1"]
    return backend.create_target_group(
        name, protocol="HTTP", port=80, vpc_id=vpc.id, target_type="ip"
    )


def test_target_group_attributes_exist() -> None:
    group = _target_group("attributes")
    for name in moto_elbv2.TARGET_GROUP_ATTRIBUTES:
        assert hasattr(group, name), name
    assert float(group.attributes[moto_elbv2.DEREGISTRATION_DELAY]) == 300
    found = moto_elbv2.find_target_group(group.arn)
    assert found is not None and found.target_type == "ip" and not found.has_load_balancer
    assert moto_elbv2.find_target_group(group.arn.replace(ELB_ACCOUNT, "111111111111")) is None


def test_describe_target_health_reports_the_emulators_states() -> None:
    backend = elbv2_backends[ELB_ACCOUNT]["us-east-1"]
    group = _target_group("health")
    handle = moto_elbv2.find_target_group(group.arn)
    assert handle is not None
    handle.register("10.0.0.1", 8080)
    backend.register_targets(group.arn, [{"Id": "10.0.0.2"}])  # by hand: moto's own answer
    handle.set_health("10.0.0.1", "initial", "Elb.RegistrationInProgress", "in progress")
    reported = {h.instance_id: h for h in backend.describe_target_health(group.arn, [])}
    assert (reported["10.0.0.1"].status, reported["10.0.0.1"].reason) == (
        "initial",
        "Elb.RegistrationInProgress",
    )
    assert reported["10.0.0.1"].port == 8080
    assert reported["10.0.0.2"].status == "healthy"

    handle.deregister("10.0.0.1")
    assert [h.instance_id for h in backend.describe_target_health(group.arn, [])] == ["10.0.0.2"]
    (gone,) = backend.describe_target_health(group.arn, [{"Id": "10.0.0.1"}])
    assert gone.status == "unused"
    handle.deregister("10.0.0.1")  # already gone: nothing to do


def test_a_group_only_a_modified_listener_forwards_to_has_a_load_balancer() -> None:
    """moto's load_balancer_arns misses groups ModifyListener/ModifyRule point at; ECS does
    not, so the emulator also reads the listeners' actions."""
    ec2 = ec2_backends[ELB_ACCOUNT]["us-east-1"]
    backend = elbv2_backends[ELB_ACCOUNT]["us-east-1"]
    main, canary = _target_group("main"), _target_group("canary")
    vpc_id = main.vpc_id
    subnets = [
        ec2.create_subnet(vpc_id, f"10.0.{n}.0/24", availability_zone=f"us-east-1{zone}").id
        for n, zone in ((1, "a"), (2, "b"))
    ]
    balancer = backend.create_load_balancer("alb", [], subnets)
    forward = {"Type": "forward", "TargetGroupArn": main.arn}
    listener = backend.create_listener(balancer.arn, "HTTP", "80", "", None, [forward])
    for kind, obj in (
        ("backend", backend),
        ("load_balancer", balancer),
        ("listener", listener),
        ("rule", next(iter(listener.rules.values()))),
        ("action", listener.default_actions[0]),
    ):
        for name in moto_elbv2.FORWARDING_ATTRIBUTES[kind]:
            assert hasattr(obj, name), (kind, name)
    handle = moto_elbv2.find_target_group(canary.arn)
    assert handle is not None and not handle.has_load_balancer

    weighted = {
        "Type": "forward",
        "ForwardConfig": {
            "TargetGroups": [
                {"TargetGroupArn": main.arn, "Weight": 100},
                {"TargetGroupArn": canary.arn, "Weight": 0},
            ]
        },
    }
    backend.modify_listener(listener.arn, actions=[weighted])
    assert canary.load_balancer_arns == [] and handle.has_load_balancer
    (found,) = [
        found
        for found in moto_elbv2.forwarding_listeners()
        if found.load_balancer_arn == balancer.arn
    ]
    assert found.arn == listener.arn and found.routes == [{main.arn: 100.0, canary.arn: 0.0}]


def test_task_definition_attributes_and_reservation() -> None:
    backend = EC2ContainerServiceBackend("us-east-1", "123456789012")
    sized = backend.register_task_definition("sized", CONTAINERS, cpu="256", memory="512")
    for name in moto_internals.TASK_DEFINITION_ATTRIBUTES:
        assert hasattr(sized, name), name
    containers = [
        {"name": "web", "image": "nginx:1", "memoryReservation": 64},
        {"name": "log", "image": "fluent:1", "memory": 32, "cpu": 128},
    ]
    unsized = backend.register_task_definition("unsized", containers)
    ref = moto_internals.ServiceRef("123456789012", "us-east-1", backend, None)
    assert moto_internals.task_reservation(ref, sized.arn) == (256.0, 512.0)
    assert moto_internals.task_reservation(ref, unsized.arn) == (128.0, 96.0)
    bare = backend.register_task_definition("bare", CONTAINERS)
    assert moto_internals.task_reservation(ref, bare.arn) == (
        moto_internals.DEFAULT_CPU_UNITS,
        128.0,
    )


def test_cloudwatch_methods_the_metric_store_replaces_keep_their_shape() -> None:
    """moto_cloudwatch swaps these methods on moto's classes: a moto that renames them or
    changes what its response methods pass would bypass the store."""
    for name in moto_cloudwatch.REPLACED_BACKEND_METHODS:
        assert callable(getattr(CloudWatchBackend, name, None)), name
    backend = CloudWatchBackend("us-east-1", "123456789012")
    for name in moto_cloudwatch.BACKEND_ATTRIBUTES:
        assert hasattr(backend, name), name
    for name in ("cloudwatch_backend", "_get_param", "_get_int_param", "_get_params"):
        assert hasattr(CloudWatchResponse, name), name
    calls = inspect.getsource(CloudWatchResponse.get_metric_data)
    assert "start_time=start, end_time=end, queries=queries, scan_by=scan_by" in calls
    assert "put_metric_data(namespace, metric_data)" in inspect.getsource(
        CloudWatchResponse.put_metric_data
    )
    parameters = inspect.signature(MetricDatum.__init__).parameters
    assert list(parameters)[1:] == ["namespace", "name", "value", "dimensions", "timestamp", "unit"]
