"""Reading a worker's Prometheus endpoint as Prometheus would: `scrape` parses `/metrics` with
prometheus_client's parser, and `Scrape.value` adds up the samples of one name whose labels
include the given ones (a counter recorded by several activity or workflow types is several
samples)."""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample


@dataclass(frozen=True)
class Scrape:
    samples: tuple[Sample, ...]

    def names(self) -> set[str]:
        return {sample.name for sample in self.samples}

    def matching(self, name: str, **labels: str) -> list[Sample]:
        return [
            sample
            for sample in self.samples
            if sample.name == name
            and all(sample.labels.get(key) == value for key, value in labels.items())
        ]

    def value(self, name: str, **labels: str) -> float:
        """The sum of the matching samples (0 when there is none)."""
        return sum(sample.value for sample in self.matching(name, **labels))

    def by_label(self, name: str, label: str) -> dict[str, float]:
        """The samples of `name` added up per value of `label`."""
        totals: dict[str, float] = {}
        for sample in self.matching(name):
            key = sample.labels.get(label, "")
            totals[key] = totals.get(key, 0.0) + sample.value
        return totals

    def with_prefix(self, prefix: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample whose name starts with `prefix`, keyed by name and labels."""
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for sample in self.samples
            if sample.name.startswith(prefix)
        }


def scrape(url: str) -> Scrape:
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    families = text_string_to_metric_families(text)
    return Scrape(tuple(sample for family in families for sample in family.samples))
