"""A paper's bucket columns (`core/buckets.py`) against plain lists of rows."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from trending_arxiv.core import buckets
from trending_arxiv.core.buckets import ENDS, LATEST, POSTS, WEIGHT

# (end, posts, latest, weight) rows; ends on a small grid so that they collide.
ROWS = st.lists(
    st.tuples(
        st.integers(0, 40).map(lambda minute: minute * 60),
        st.integers(0, 5),
        st.integers(0, 3),
        st.integers(0, 10**9),
    ),
    max_size=60,
)


def columns_of(rows: list[tuple[int, int, int, int]]) -> buckets.Buckets:
    """Rows added one by one, as counting adds events to their buckets."""
    made = buckets.new_buckets()
    for end, posts, latest, weight in rows:
        index = buckets.find_or_make(made, end)
        made[POSTS][index] += posts
        made[LATEST][index] += latest
        made[WEIGHT][index] += weight
    return made


def summed_by_end(rows: list[tuple[int, int, int, int]]) -> dict[int, list[int]]:
    by_end: dict[int, list[int]] = {}
    for end, *fields in rows:
        totals = by_end.setdefault(end, [0, 0, 0])
        for field, value in enumerate(fields):
            totals[field] += value
    return by_end


@given(ROWS)
def test_buckets_are_one_per_end_in_order_of_their_ends(
    rows: list[tuple[int, int, int, int]],
) -> None:
    made = columns_of(rows)
    by_end = summed_by_end(rows)
    assert made[ENDS] == sorted(by_end)
    assert all(len(column) == len(made[ENDS]) for column in made)
    for index, end in enumerate(made[ENDS]):
        assert [made[POSTS][index], made[LATEST][index], made[WEIGHT][index]] == by_end[end]
        assert buckets.find(made, end) == index
    assert buckets.find(made, -60) == -1


@given(ROWS, st.integers(-120, 2500), st.integers(-120, 2500))
def test_range_sums_are_the_buckets_ending_in_the_range(
    rows: list[tuple[int, int, int, int]], after: int, through: int
) -> None:
    by_end = summed_by_end(rows)
    inside = [fields for end, fields in by_end.items() if after < end <= through]
    want = (sum(f[0] for f in inside), sum(f[1] for f in inside))
    made = columns_of(rows)
    low, high = buckets.count_through(made, after), buckets.count_through(made, through)
    assert buckets.posts_and_latest_of(made, low, max(low, high)) == want


@given(ROWS, st.integers(-120, 2500))
def test_dropping_the_first_buckets_keeps_the_later_ones(
    rows: list[tuple[int, int, int, int]], horizon: int
) -> None:
    made = columns_of(rows)
    gone = buckets.count_through(made, horizon)
    assert gone == sum(1 for end in made[ENDS] if end <= horizon)
    buckets.drop_first(made, gone)
    assert made == columns_of([row for row in rows if row[0] > horizon])


@given(ROWS)
def test_keyed_buckets_read_as_the_same_columns(rows: list[tuple[int, int, int, int]]) -> None:
    keyed = {str(end): fields for end, fields in summed_by_end(rows).items()}
    assert buckets.from_keyed(keyed) == columns_of(rows)
