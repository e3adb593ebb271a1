"""The base of every request, status and activity model."""

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Rejects unknown fields, so a typo in a request fails loudly instead of being ignored."""

    model_config = ConfigDict(extra="forbid")
