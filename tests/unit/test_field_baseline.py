"""The field baseline: mid-rank percentiles and the category → archive → all fallback."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from trending_arxiv.core.field_baseline import (
    NO_CATEGORY,
    Baseline,
    archive_of,
    baseline_for,
    field_baselines,
)


def test_archive_of_arxiv_categories() -> None:
    assert archive_of("cs.LG") == "cs"
    assert archive_of("astro-ph.GA") == "astro-ph"
    assert archive_of("hep-th") == "hep-th"


def test_mid_rank_percentile() -> None:
    baseline = Baseline.of("math.AG", "category", {0: 4, 1: 2, 6: 1, 9: 1})
    assert baseline.papers == 8
    assert baseline.percentile(0) == 100 * 2 / 8  # four tied at the bottom share 0..4
    assert baseline.percentile(6) == 100 * 6.5 / 8
    assert baseline.percentile(9) == 100 * 7.5 / 8
    assert baseline.percentile(7) == 100 * 7 / 8  # not in the population: papers below
    assert baseline.percentile(50) == 100.0
    assert Baseline.of("x", "all", {}).percentile(3) == 0.0


def test_small_categories_fall_back_to_their_archive_then_to_all() -> None:
    population = {
        "cs.LG": {1: 10, 5: 5, 80: 1},  # 16 papers: its own baseline
        "cs.DS": {1: 2, 6: 1},  # 3 papers: the cs archive
        "math.AG": {0: 1, 6: 1},  # 2 papers, math has 2: everything
        NO_CATEGORY: {1: 3},
    }
    baselines = field_baselines(population, min_papers=5)
    assert baseline_for(baselines, "cs.LG").level == "category"
    cs = baseline_for(baselines, "cs.DS")
    assert (cs.field, cs.level, cs.papers) == ("cs", "archive", 19)
    everything = baseline_for(baselines, "math.AG")
    assert (everything.level, everything.papers) == ("all", 24)
    assert baseline_for(baselines, None) is everything
    assert baseline_for(baselines, NO_CATEGORY) is everything
    # A category seen only among ranked papers: its archive if big enough, else all.
    assert baseline_for(baselines, "cs.CL").field == "cs"
    assert baseline_for(baselines, "q-bio.GN") is everything


@given(st.lists(st.integers(min_value=0, max_value=30), min_size=1, max_size=60))
def test_percentile_equals_a_naive_count(values: list[int]) -> None:
    baseline = Baseline.of("f", "category", Counter(values))
    for probe in {*values, 31, -1}:
        below = sum(1 for v in values if v < probe)
        equal = sum(1 for v in values if v == probe)
        assert abs(baseline.percentile(probe) - 100 * (below + equal / 2) / len(values)) < 1e-6
