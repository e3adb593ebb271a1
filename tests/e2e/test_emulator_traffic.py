"""The emulator's simulated traffic and the metrics it writes, read back through boto3's
CloudWatch client: the split by listener rule weights, services without a load balancer, the
image tags (`errors-<N>`, `latency-<N>`, `cpu-<N>`), CloudWatch's percentiles, and
`traffic_rps` (0 sends nothing; the admin endpoint and the command line refuse bad values).

Traffic runs at a high rate so that a few seconds hold enough requests for tight bounds; each
test reads every metric over the same settled seconds (`wait_for_requests`)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from ecs_emulator import EmulatorAdminError
from ecs_emulator import __main__ as emulator_cli
from tests.helpers import create_service, register, wait_stable, wait_until_sync
from tests.helpers.ecs import awsvpc_network, target_group, web_definition
from tests.helpers.load_balancers import balancer, behind, healthy_targets
from tests.helpers.traffic import (
    APPLICATION,
    ELB,
    INSIGHTS,
    clock_second,
    datapoints,
    elb_dimension,
    metric_query,
    service_dimensions,
    settled,
    total,
    traffic_at,
    wait_for_requests,
    wait_seconds_done,
)

pytestmark = pytest.mark.usefixtures("fast_health_checks")

RPS = 1000
# Seconds read back, as one period where a test wants one value for the whole run.
WINDOW = 120
# Requests per entry point before a test reads its metrics: the binomial spread of a share
# is then below 1 percentage point.
REQUESTS = 4000
# The answer model's latency: lognormal, median 50 ms, sigma 0.3 (ecs_emulator/answers.py).
MEDIAN_MS, SIGMA = 50.0, 0.3
Z90, Z99 = 1.2815515655446004, 2.3263478740408408
DEFAULT_CPU_UNITS = 1024  # what a task definition without `cpu` reserves


def lognormal_percentile(z: float) -> float:
    return MEDIAN_MS * math.exp(SIGMA * z)


def plain_services(ecs: Any, images: dict[str, str], desired: int = 2) -> None:
    """Services without a load balancer, named by key, running the image given, once stable."""
    for name, image in images.items():
        create_service(ecs, name, register(ecs, family=name, image=image), desired)
    for name in images:
        wait_stable(ecs, name)


def balanced_service(
    ecs: Any, seed: dict[str, Any], name: str, target_group_arn: str, desired: int
) -> None:
    """An awsvpc service behind `target_group_arn`, its task definition named after it."""
    create_service(
        ecs,
        name,
        web_definition(ecs, family=name),
        desired,
        networkConfiguration=awsvpc_network(seed),
        loadBalancers=behind(target_group_arn),
    )


def requests_to(emulator: Any, cloudwatch: Any, *services: str) -> datetime:
    """Traffic at RPS until each service has had REQUESTS; returns a settled end by which
    all of them have."""
    with traffic_at(emulator, RPS):
        return max(
            wait_for_requests(
                emulator, cloudwatch, APPLICATION, service_dimensions(service), REQUESTS
            )
            for service in services
        )


def whole_window(values: list[float]) -> float:
    """The one datapoint of a query whose period is its whole window (`WINDOW`)."""
    (value,) = values
    return value


def test_a_listener_splits_requests_by_its_rules_and_their_weights(
    emulator: Any, ecs: Any, elbv2: Any, cloudwatch: Any, ecs_state: dict[str, Any]
) -> None:
    # The default action sends everything to the main group; the rule splits 60/40. Each rule
    # gets half the listener's requests, so main gets 0.5 + 0.5 * 0.6 = 80 %, canary 20 %.
    alb = balancer(elbv2, ecs_state, "shop")
    elbv2.modify_rule(
        RuleArn=alb.rule_arn,
        Actions=[
            {
                "Type": "forward",
                "ForwardConfig": {
                    "TargetGroups": [
                        {"TargetGroupArn": alb.main_group, "Weight": 60},
                        {"TargetGroupArn": alb.canary_group, "Weight": 40},
                    ]
                },
            }
        ],
    )
    balanced_service(ecs, ecs_state, "shop", alb.main_group, 2)
    balanced_service(ecs, ecs_state, "shopCanary", alb.canary_group, 1)
    wait_until_sync(lambda: len(healthy_targets(elbv2, alb.main_group)) == 2, timeout=15)
    wait_until_sync(lambda: len(healthy_targets(elbv2, alb.canary_group)) == 1, timeout=15)
    load_balancer = elb_dimension(
        elbv2.describe_listeners(ListenerArns=[alb.listener_arn])["Listeners"][0]["LoadBalancerArn"]
    )
    assert load_balancer.startswith("app/shop-alb/")
    whole = {"LoadBalancer": load_balancer}
    groups = {
        "main": {"LoadBalancer": load_balancer, "TargetGroup": elb_dimension(alb.main_group)},
        "canary": {"LoadBalancer": load_balancer, "TargetGroup": elb_dimension(alb.canary_group)},
    }
    assert groups["main"]["TargetGroup"].startswith("targetgroup/shop-tg/")

    with traffic_at(emulator, RPS):
        end = wait_for_requests(emulator, cloudwatch, ELB, whole, REQUESTS)

    requests = total(cloudwatch, ELB, "RequestCount", whole, end)
    by_group = {k: total(cloudwatch, ELB, "RequestCount", d, end) for k, d in groups.items()}
    assert by_group["main"] + by_group["canary"] == requests
    assert by_group["main"] / requests == pytest.approx(0.8, abs=0.03)
    for key, service in (("main", "shop"), ("canary", "shopCanary")):
        dimensions = groups[key]
        answered = sum(
            total(cloudwatch, ELB, f"HTTPCode_Target_{kind}_Count", dimensions, end)
            for kind in ("2XX", "5XX")
        )
        assert answered == by_group[key]
        own_view = total(cloudwatch, APPLICATION, "RequestCount", service_dimensions(service), end)
        assert own_view == by_group[key]
        seconds = whole_window(
            datapoints(
                cloudwatch, ELB, "TargetResponseTime", dimensions, "p50", end, WINDOW, WINDOW
            )
        )
        assert seconds == pytest.approx(MEDIAN_MS / 1000, rel=0.1)
    listed = cloudwatch.list_metrics(Namespace=ELB, MetricName="RequestCount")["Metrics"]
    dimension_sets = {tuple(sorted(d["Name"] for d in m["Dimensions"])) for m in listed}
    assert dimension_sets == {("LoadBalancer",), ("LoadBalancer", "TargetGroup")}


def test_a_target_group_spreads_its_requests_evenly_over_its_healthy_targets(
    emulator: Any, ecs: Any, elbv2: Any, cloudwatch: Any, ecs_state: dict[str, Any]
) -> None:
    # A canary that joins the main service's group takes its share by task count: 1 in 3.
    group = target_group(elbv2, ecs_state, "shared-tg")
    balanced_service(ecs, ecs_state, "shared", group, 2)
    balanced_service(ecs, ecs_state, "sharedCanary", group, 1)
    wait_until_sync(lambda: len(healthy_targets(elbv2, group)) == 3, timeout=15)
    with traffic_at(emulator, RPS):
        dimensions = service_dimensions("sharedCanary")
        end = wait_for_requests(emulator, cloudwatch, APPLICATION, dimensions, REQUESTS / 3)
    canary = total(cloudwatch, APPLICATION, "RequestCount", dimensions, end)
    main = total(cloudwatch, APPLICATION, "RequestCount", service_dimensions("shared"), end)
    assert canary / (canary + main) == pytest.approx(1 / 3, abs=0.03)


def test_a_target_group_weighted_zero_gets_no_requests(
    emulator: Any, ecs: Any, elbv2: Any, cloudwatch: Any, ecs_state: dict[str, Any]
) -> None:
    alb = balancer(elbv2, ecs_state, "quiet")  # main 100, canary 0 on both rules
    balanced_service(ecs, ecs_state, "quietCanary", alb.canary_group, 1)
    wait_until_sync(lambda: len(healthy_targets(elbv2, alb.canary_group)) == 1, timeout=15)
    with traffic_at(emulator, RPS):
        wait_seconds_done(emulator, clock_second(emulator) + 2)
        end = settled(emulator)
    canary = service_dimensions("quietCanary")
    assert total(cloudwatch, APPLICATION, "RequestCount", canary, end) == 0
    # Its tasks still run: Container Insights reports them all the same.
    assert datapoints(cloudwatch, INSIGHTS, "CpuUtilized", canary, "SampleCount", end)


def test_a_service_without_a_load_balancer_spreads_over_its_running_tasks(
    emulator: Any, ecs: Any, cloudwatch: Any
) -> None:
    plain_services(ecs, {"plain": "nginx:1.25", "broken": "nginx:errors-5"})
    end = requests_to(emulator, cloudwatch, "plain", "broken")

    def error_rate(service: str) -> float:
        dimensions = service_dimensions(service)
        errors = total(cloudwatch, APPLICATION, "Errors", dimensions, end)
        return errors / total(cloudwatch, APPLICATION, "RequestCount", dimensions, end)

    assert error_rate("plain") < 0.005  # 0.1 % expected
    assert error_rate("broken") == pytest.approx(0.05, abs=0.015)
    # Each second: RPS requests, from both RUNNING tasks (one CPU sample per task).
    plain = service_dimensions("plain")
    per_second = datapoints(cloudwatch, APPLICATION, "RequestCount", plain, "Sum", end)
    assert set(per_second) == {RPS}
    tasks = datapoints(cloudwatch, INSIGHTS, "CpuUtilized", plain, "SampleCount", end)
    assert set(tasks) == {2}
    assert cloudwatch.list_metrics(Namespace=ELB)["Metrics"] == []


def test_latency_tag_adds_to_the_median(emulator: Any, ecs: Any, cloudwatch: Any) -> None:
    plain_services(ecs, {"plain": "nginx:1.25", "slow": "nginx:latency-25"})
    end = requests_to(emulator, cloudwatch, "plain", "slow")
    medians = {}
    for name in ("plain", "slow"):
        dimensions = service_dimensions(name)
        medians[name] = whole_window(
            datapoints(cloudwatch, APPLICATION, "Latency", dimensions, "p50", end, WINDOW, WINDOW)
        )
    assert medians["plain"] == pytest.approx(MEDIAN_MS, abs=2)
    assert medians["slow"] - medians["plain"] == pytest.approx(25, abs=3)


def test_cpu_tag_sets_the_utilisation_of_the_task_reservation(
    emulator: Any, ecs: Any, cloudwatch: Any
) -> None:
    plain_services(ecs, {"idle": "nginx:1.25", "busy": "nginx:cpu-60"})
    end = requests_to(emulator, cloudwatch, "idle", "busy")

    def average(service: str, metric: str) -> float:
        dimensions = service_dimensions(service)
        return whole_window(
            datapoints(cloudwatch, INSIGHTS, metric, dimensions, "Average", end, WINDOW, WINDOW)
        )

    assert average("busy", "CpuUtilized") / DEFAULT_CPU_UNITS == pytest.approx(0.60, abs=0.03)
    assert average("idle", "CpuUtilized") / DEFAULT_CPU_UNITS == pytest.approx(0.20, abs=0.03)
    # 30 % of the container's 128 MiB, whatever the tags.
    assert average("busy", "MemoryUtilized") == pytest.approx(0.30 * 128, abs=2)


def test_get_metric_data_answers_percentiles_of_the_traffic(
    emulator: Any, ecs: Any, cloudwatch: Any
) -> None:
    plain_services(ecs, {"plain": "nginx:1.25"})
    dimensions = service_dimensions("plain")
    end = requests_to(emulator, cloudwatch, "plain")
    stats = ("p50", "p90", "p99", "SampleCount", "Average", "Minimum", "Maximum")
    results = cloudwatch.get_metric_data(
        MetricDataQueries=[
            metric_query(stat.lower(), APPLICATION, "Latency", dimensions, stat, WINDOW)
            for stat in stats
        ],
        StartTime=end - timedelta(seconds=WINDOW),
        EndTime=end,
    )["MetricDataResults"]
    found = {r["Id"]: r["Values"] for r in results}
    assert all(r["StatusCode"] == "Complete" for r in results)
    value = {stat: found[stat.lower()][0] for stat in stats}
    assert value["SampleCount"] >= REQUESTS
    assert value["Minimum"] < value["p50"] < value["p90"] < value["p99"] < value["Maximum"]
    assert value["p50"] == pytest.approx(MEDIAN_MS, rel=0.05)
    assert value["p90"] == pytest.approx(lognormal_percentile(Z90), rel=0.05)
    assert value["p99"] == pytest.approx(lognormal_percentile(Z99), rel=0.1)
    # GetMetricStatistics gives the same percentile for the same period.
    (point,) = cloudwatch.get_metric_statistics(
        Namespace=APPLICATION,
        MetricName="Latency",
        Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()],
        StartTime=end - timedelta(seconds=WINDOW),
        EndTime=end,
        Period=WINDOW,
        ExtendedStatistics=["p99"],
    )["Datapoints"]
    assert point["ExtendedStatistics"]["p99"] == value["p99"]
    assert point["Unit"] == "Milliseconds"


def test_percentiles_are_values_that_were_put_counts_included(cloudwatch: Any) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    metric = {"Namespace": "Shop", "MetricName": "Latency", "Dimensions": []}
    cloudwatch.put_metric_data(
        Namespace="Shop",
        MetricData=[
            {
                "MetricName": "Latency",
                "Timestamp": now,
                "Values": [float(v) for v in range(1, 101)],
            },
            {"MetricName": "Latency", "Timestamp": now, "Values": [500.0], "Counts": [100.0]},
            # A statistic set adds to the plain statistics, never to a percentile.
            {
                "MetricName": "Latency",
                "Timestamp": now,
                "StatisticValues": {
                    "SampleCount": 10,
                    "Sum": 10_000,
                    "Minimum": 1000,
                    "Maximum": 1000,
                },
            },
        ],
    )

    def stat(name: str) -> float:
        (result,) = cloudwatch.get_metric_data(
            MetricDataQueries=[
                {"Id": "q", "MetricStat": {"Metric": metric, "Period": 60, "Stat": name}}
            ],
            StartTime=now,
            EndTime=now + timedelta(seconds=60),
        )["MetricDataResults"]
        (value,) = result["Values"]
        return float(value)

    # 1..100 once each, then 500 a hundred times: 200 samples.
    assert stat("p25") == 50
    assert stat("p50") == 100
    assert stat("p50.5") == 500
    assert stat("p99") == 500
    assert stat("SampleCount") == 210
    assert stat("Sum") == sum(range(1, 101)) + 50_000 + 10_000
    assert stat("Maximum") == 1000


@pytest.mark.parametrize("stat", ["p101", "median", "p-1"])
def test_an_unknown_statistic_is_refused_as_cloudwatch_does(cloudwatch: Any, stat: str) -> None:
    now = datetime.now(UTC)
    query = metric_query("q", APPLICATION, "Latency", service_dimensions("plain"), stat, 60)
    with pytest.raises(ClientError) as refused:
        cloudwatch.get_metric_data(
            MetricDataQueries=[query], StartTime=now - timedelta(minutes=5), EndTime=now
        )
    assert refused.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert stat in refused.value.response["Error"]["Message"]


def test_no_traffic_at_zero_rps_and_none_once_it_is_turned_off(
    emulator: Any, ecs: Any, cloudwatch: Any, ecs_state: dict[str, Any]
) -> None:
    plain_services(ecs, {"plain": "nginx:1.25"}, desired=1)
    dimensions = service_dimensions("plain")
    wait_seconds_done(emulator, clock_second(emulator) + 2)  # e2e default: traffic_rps 0
    assert emulator.admin.info()["traffic"]["requests"] == 0
    assert cloudwatch.list_metrics(Namespace=APPLICATION)["Metrics"] == []
    assert cloudwatch.list_metrics(Namespace=INSIGHTS)["Metrics"] == []

    with traffic_at(emulator, 50):
        wait_for_requests(emulator, cloudwatch, APPLICATION, dimensions, 50)
    off = clock_second(emulator)
    # The second being sent as traffic stopped may still come; none after it.
    done = wait_seconds_done(emulator, off + 3)
    after = datetime.fromtimestamp(off + 2, UTC)
    query = metric_query("q", APPLICATION, "RequestCount", dimensions, "Sum", 1)
    (result,) = cloudwatch.get_metric_data(
        MetricDataQueries=[query], StartTime=after, EndTime=datetime.fromtimestamp(done + 1, UTC)
    )["MetricDataResults"]
    assert result["Values"] == []
    sent = emulator.admin.info()["traffic"]["requests"]
    assert sent >= 50
    wait_seconds_done(emulator, done + 1)
    assert emulator.admin.info()["traffic"]["requests"] == sent


def test_traffic_rps_changes_at_run_time_and_bad_values_change_nothing(
    emulator: Any, ecs_state: dict[str, Any]
) -> None:
    with traffic_at(emulator, 12.5):
        assert emulator.admin.info()["settings"]["traffic_rps"] == 12.5
        for bad in (
            {"traffic_rps": -1},
            {"traffic_rps": "fast"},
            {"traffic_rps": True},
            {"traffic_rps": 1e9},
            {"traffic_rps": 5, "throttle_rate": 2},
        ):
            with pytest.raises(EmulatorAdminError, match="400"):
                emulator.admin.settings(**bad)
            assert emulator.admin.info()["settings"]["traffic_rps"] == 12.5
    assert emulator.admin.info()["settings"]["traffic_rps"] == 0


@pytest.mark.parametrize(
    ("arguments", "environment"),
    [(["--traffic-rps", "-1"], {}), ([], {"ECS_EMULATOR_TRAFFIC_RPS": "nan"})],
)
def test_a_bad_traffic_rate_at_start_is_refused(
    arguments: list[str],
    environment: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`python -m ecs_emulator`'s own `main`, in this process: a new interpreter would spend
    seconds importing moto before refusing (test_emulator_admin.py runs the refusal as a
    process, and its exit code 2)."""
    for name, value in environment.items():
        monkeypatch.setenv(name, value)

    assert emulator_cli.main(["--port", "0", *arguments]) == 2
    assert "traffic_rps must be between 0 (no traffic) and 10000" in capsys.readouterr().err
