"""How an emulated task answers a request: its latency, whether it fails, how busy it is.

One model for the emulator's traffic and for the judge's accuracy benchmark, so that the
benchmark's simulated intervals are drawn exactly as the emulator draws its requests.

- Latency is lognormal with a median of 50 ms and sigma 0.3 (on the log scale).
- 0.1 % of answers are 5XX.
- A task's image tag changes that, for any container of its task definition: `errors-<N>`
  makes N % of answers 5XX (decimals allowed), `latency-<N>` adds N ms to every answer (so to
  the median), `cpu-<N>` sets the task's CPU utilisation to N %.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from .faults import image_tag

MEDIAN_LATENCY_MS = 50.0
LATENCY_SIGMA = 0.3
BASE_ERROR_RATE = 0.001
BASE_CPU_PERCENT = 20.0
# Period-to-period noise of a task's CPU utilisation, in percentage points.
CPU_NOISE_POINTS = 2.0
BASE_MEMORY_PERCENT = 30.0
# Period-to-period noise of a task's memory utilisation, in percentage points.
MEMORY_NOISE_POINTS = 1.0

_TAG = re.compile(r"^(errors|latency|cpu)-(\d+(?:\.\d+)?)$")


@dataclass(frozen=True)
class AnswerModel:
    """One task's answers: the image tags of its task definition decide the parameters."""

    error_rate: float = BASE_ERROR_RATE
    added_latency_ms: float = 0.0
    cpu_percent: float = BASE_CPU_PERCENT

    @classmethod
    def from_images(cls, images: Iterable[str]) -> AnswerModel:
        """The model for a task whose containers run `images`; the first tag of each kind
        wins. An out-of-range value is clamped (an error rate above 100 % is 100 %)."""
        found: dict[str, float] = {}
        for image in images:
            match = _TAG.match(image_tag(image))
            if match:
                found.setdefault(match.group(1), float(match.group(2)))
        return cls(
            error_rate=min(found.get("errors", BASE_ERROR_RATE * 100), 100.0) / 100,
            added_latency_ms=found.get("latency", 0.0),
            cpu_percent=min(found.get("cpu", BASE_CPU_PERCENT), 100.0),
        )

    def latencies_ms(self, rng: np.random.Generator, count: int) -> np.ndarray:
        """`count` answer times in milliseconds."""
        base = rng.lognormal(mean=math.log(MEDIAN_LATENCY_MS), sigma=LATENCY_SIGMA, size=count)
        return np.asarray(base + self.added_latency_ms)

    def errors(self, rng: np.random.Generator, count: int) -> int:
        """How many of `count` answers are 5XX."""
        return int(rng.binomial(count, self.error_rate))

    def cpu(self, rng: np.random.Generator) -> float:
        """One period's CPU utilisation in percent, within 0..100."""
        return float(np.clip(rng.normal(self.cpu_percent, CPU_NOISE_POINTS), 0.0, 100.0))

    def memory(self, rng: np.random.Generator) -> float:
        """One period's memory utilisation in percent of the task's reservation (no image tag
        changes it)."""
        return float(np.clip(rng.normal(BASE_MEMORY_PERCENT, MEMORY_NOISE_POINTS), 0.0, 100.0))
