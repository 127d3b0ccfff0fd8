"""Unusual for its field: a paper's attention as a percentile of its field's papers.

The `field` sort ranks a paper by where its distinct accounts in the chosen window fall
among the papers of its *field* that were mentioned in the last 30 days (the baseline
population, each valued by its distinct accounts in the same window, zero if none):

    percentile = 100 * (papers below + 0.5 * papers equal) / papers in the field

(the mid-rank percentile: ties share the middle of their range, so a field where every
paper has one account puts each at 50, not 100). A field is the paper's primary arXiv
category when that category has at least `min_papers` papers in the baseline; otherwise
its archive (`cs`, `math`, `astro-ph`... the part before the dot); otherwise every paper.
Papers whose metadata (hence category) is unknown are compared with every paper.

We picked the percentile over a robust z-score ((x - median) / MAD): attention is
zero-inflated and heavy-tailed, so most fields have a median absolute deviation of 0 or 1
and the z-score is undefined or jumps by whole units; a percentile is always defined,
bounded and comparable across fields.

Pure: inputs are histograms `{category: {accounts: papers}}`, built by aggregations
(papers index) or by counting mentions.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

#: A category (or archive) with fewer baseline papers falls back to the next level.
DEFAULT_FIELD_MIN_PAPERS = 5
#: The baseline population: papers mentioned within this many days of the ranking moment.
BASELINE_DAYS = 30
#: The key of papers without a primary category (metadata unknown).
NO_CATEGORY = ""
ALL_FIELDS = "*"

Level = Literal["category", "archive", "all"]
Histogram = Mapping[int, int]


def archive_of(category: str) -> str:
    """`cs.LG` -> `cs`, `astro-ph.GA` -> `astro-ph`, `hep-th` -> `hep-th`."""
    return category.split(".", 1)[0]


@dataclass(frozen=True)
class Baseline:
    """One field's population: sorted distinct values and how many papers lie below each."""

    field: str
    level: Level
    values: tuple[int, ...]
    below: tuple[int, ...]  # below[i]: papers with a value < values[i]
    counts: tuple[int, ...]  # counts[i]: papers with value values[i]
    papers: int

    @classmethod
    def of(cls, field: str, level: Level, histogram: Histogram) -> Baseline:
        values = tuple(sorted(v for v, n in histogram.items() if n > 0))
        counts = tuple(histogram[v] for v in values)
        below, running = [], 0
        for n in counts:
            below.append(running)
            running += n
        return cls(field, level, values, tuple(below), counts, running)

    def percentile(self, value: int) -> float:
        """Mid-rank percentile of `value` in this population (0 for an empty one)."""
        if not self.papers:
            return 0.0
        i = bisect.bisect_left(self.values, value)
        if i < len(self.values) and self.values[i] == value:
            lower, equal = self.below[i], self.counts[i]
        else:
            lower = self.below[i] if i < len(self.values) else self.papers
            equal = 0
        return round(100.0 * (lower + 0.5 * equal) / self.papers, 6)


def _merge(histograms: Iterable[Histogram]) -> Counter[int]:
    total: Counter[int] = Counter()
    for histogram in histograms:
        total.update(histogram)
    return total


def field_baselines(
    population: Mapping[str, Histogram], min_papers: int = DEFAULT_FIELD_MIN_PAPERS
) -> dict[str, Baseline]:
    """The baseline each primary category is ranked against (see the module doc).

    `population` maps a primary category (`NO_CATEGORY` for unknown) to the histogram of
    its baseline papers' values. Categories that only occur among the ranked papers get
    their fallback through `baseline_for`.
    """
    everything = Baseline.of(ALL_FIELDS, "all", _merge(population.values()))
    archives: dict[str, Counter[int]] = {}
    for category, histogram in population.items():
        if category != NO_CATEGORY:
            archives.setdefault(archive_of(category), Counter()).update(histogram)
    archive_baselines = {
        name: Baseline.of(name, "archive", histogram)
        for name, histogram in archives.items()
        if sum(histogram.values()) >= min_papers
    }
    chosen: dict[str, Baseline] = {ALL_FIELDS: everything}
    for category, histogram in population.items():
        if category == NO_CATEGORY:
            chosen[category] = everything
        elif sum(histogram.values()) >= min_papers:
            chosen[category] = Baseline.of(category, "category", histogram)
        else:
            chosen[category] = archive_baselines.get(archive_of(category), everything)
    for name, baseline in archive_baselines.items():
        chosen.setdefault(f"{name}.*", baseline)
    return chosen


def baseline_for(baselines: Mapping[str, Baseline], category: str | None) -> Baseline:
    """The baseline of a paper with primary category `category` (None: unknown)."""
    if not category:
        return baselines[ALL_FIELDS]
    found = baselines.get(category)
    if found is not None:
        return found
    return baselines.get(f"{archive_of(category)}.*", baselines[ALL_FIELDS])


def field_sort_key(percentile: float, accounts: int, arxiv_id: str) -> tuple[float, int, str]:
    """Order of the `field` sort: percentile, then accounts (both descending), then id."""
    return (-percentile, -accounts, arxiv_id)
