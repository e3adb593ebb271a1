"""The custom search attributes a deployment keeps current, so that `temporal workflow list`
and the Web UI can find runs by cluster, service, stage and outcome."""

from temporalio.common import SearchAttributeKey

ECS_CLUSTER = SearchAttributeKey.for_keyword("EcsCluster")
ECS_SERVICE = SearchAttributeKey.for_keyword("EcsService")
DEPLOYMENT_STAGE = SearchAttributeKey.for_keyword("DeploymentStage")
DEPLOYMENT_OUTCOME = SearchAttributeKey.for_keyword("DeploymentOutcome")

ALL = (ECS_CLUSTER, ECS_SERVICE, DEPLOYMENT_STAGE, DEPLOYMENT_OUTCOME)
