"""A paper's time buckets of one kind (minutes or hours) as columns: pure functions.

Four columns of integers, the buckets in ascending order of their ends (epoch s):
`[ends, posts, accounts whose latest live post falls in the bucket, trend weight]`;
bucket i is the i-th of each. Columns rather than records: windows are ranges of ends
(a bisection each) summed by indexed loops (compiled, they allocate nothing), and every
paper's summary goes to the changelog as JSON at each change (plain lists, no keys to
parse back). Read them through `ENDS`, `POSTS`, `LATEST` and `WEIGHT`. `counting`
keeps the rules (which bucket an event lands in, folds, windows, scores); this module
only the layout.
"""

from __future__ import annotations

import bisect
from typing import Final

ENDS: Final = 0
POSTS: Final = 1
LATEST: Final = 2
WEIGHT: Final = 3
Buckets = list[list[int]]


def new_buckets() -> Buckets:
    return [[], [], [], []]


def find(buckets: Buckets, end: int) -> int:
    """The index of the bucket ending at `end`, or -1."""
    ends = buckets[ENDS]
    index = bisect.bisect_left(ends, end)
    return index if index < len(ends) and ends[index] == end else -1


def find_or_make(buckets: Buckets, end: int) -> int:
    """The index of the bucket ending at `end`, made (empty) if missing."""
    ends = buckets[ENDS]
    size = len(ends)
    if size and ends[size - 1] <= end:  # most events are a paper's newest
        if ends[size - 1] == end:
            return size - 1
        index = size
    else:
        index = bisect.bisect_left(ends, end)
        if index < size and ends[index] == end:
            return index
    ends.insert(index, end)
    buckets[POSTS].insert(index, 0)
    buckets[LATEST].insert(index, 0)
    buckets[WEIGHT].insert(index, 0)
    return index


def count_through(buckets: Buckets, end: float) -> int:
    """How many buckets end at or before `end`: they are the columns' first ones."""
    return bisect.bisect_right(buckets[ENDS], end)


def drop_first(buckets: Buckets, count: int) -> None:
    """Drop the `count` oldest buckets."""
    if count:
        for column in buckets:
            del column[:count]


def posts_and_latest_of(buckets: Buckets, low: int, high: int) -> tuple[int, int]:
    """Posts and accounts at their latest post over the buckets `low` to `high` - 1."""
    posts_column, latest_column = buckets[POSTS], buckets[LATEST]
    posts = latest = 0
    # An indexed loop, not slices and `sum`: compiled, it allocates nothing.
    for index in range(low, high):
        posts += posts_column[index]
        latest += latest_column[index]
    return posts, latest


def from_keyed(keyed: dict[str, list[int]]) -> Buckets:
    """Buckets stored as `{str(end): [posts, latest, weight]}` (summaries written before
    session 19), as columns."""
    rows = sorted((int(end), *bucket) for end, bucket in keyed.items())
    return [[row[field] for row in rows] for field in (ENDS, POSTS, LATEST, WEIGHT)]
