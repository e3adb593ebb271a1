"""The models the workflow, its activities, the CLI and the tests share, from one import path.

They live by concern in three modules; this one gathers every model (and constant) they
define, so that `ecs_canary.models` stays the one place to import them from, with no list of
names to keep in step:
- `ecs_canary.request`: the deployment request and its settings;
- `ecs_canary.status`: what the workflow reports (stage, outcome, decisions, status, result);
- `ecs_canary.activity_io`: the inputs and outputs of the workflow's activities.
"""

from ecs_canary.activity_io import *  # noqa: F403
from ecs_canary.request import *  # noqa: F403
from ecs_canary.status import *  # noqa: F403
