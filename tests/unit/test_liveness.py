"""The stall rule of the worker's watchdog, without Kafka."""

from __future__ import annotations

from trending_arxiv.core.liveness import StallDetector, own_offsets

A, B = ("raw", 0), ("raw", 1)


def test_standing_offsets_with_waiting_records_count_as_stalled() -> None:
    detector = StallDetector()
    assert detector.observe(0.0, {A: 5}, {A: 9}) == 0.0
    assert detector.observe(10.0, {A: 5}, {A: 9}) == 10.0
    assert detector.observe(25.0, {A: 5}, {A: 12}) == 25.0  # more arrive, none committed


def test_any_committed_progress_restarts_the_clock() -> None:
    detector = StallDetector()
    detector.observe(0.0, {A: 5, B: 1}, {A: 9, B: 9})
    assert detector.observe(30.0, {A: 5, B: 2}, {A: 9, B: 9}) == 0.0
    assert detector.observe(40.0, {A: 5, B: 2}, {A: 9, B: 9}) == 10.0


def test_nothing_waiting_is_idle_not_stalled() -> None:
    detector = StallDetector()
    detector.observe(0.0, {A: 9}, {A: 9})
    assert detector.observe(100.0, {A: 9}, {A: 9}) == 0.0
    # Records arrive after a long idle spell: the clock runs from the last idle sight.
    assert detector.observe(110.0, {A: 9}, {A: 12}) == 10.0
    assert detector.observe(115.0, {A: 9}, {A: 12}) == 15.0


def test_a_group_that_never_committed_stalls_on_waiting_records() -> None:
    detector = StallDetector()
    detector.observe(0.0, {}, {A: 3})
    assert detector.observe(50.0, {}, {A: 3}) == 50.0
    assert detector.observe(60.0, {}, {A: 0}) == 0.0  # an empty partition waits for nothing


def test_reset_forgets_standing_time() -> None:
    detector = StallDetector()
    detector.observe(0.0, {A: 1}, {A: 5})
    detector.reset(40.0)  # e.g. Kafka did not answer, or the group rebalanced
    assert detector.observe(45.0, {A: 1}, {A: 5}) == 0.0
    assert detector.observe(60.0, {A: 1}, {A: 5}) == 15.0


def test_a_worker_watches_its_own_partitions_only() -> None:
    """A peer's commits moving on do not hide this worker's stall, and a peer that stands
    still (a paused process) is no stall of this worker's."""
    mine, theirs = {A}, {B}
    detector = StallDetector()
    for now, peer_committed in ((0.0, 1), (20.0, 4), (50.0, 9)):
        observed = own_offsets(mine, {A: 5, B: peer_committed}, {A: 9, B: 9})
        assert observed == ({A: 5}, {A: 9})
        stalled = detector.observe(now, *observed)
    assert stalled == 50.0
    peer = StallDetector()
    for now in (0.0, 50.0):
        assert peer.observe(now, *own_offsets(theirs, {A: 5, B: 9}, {A: 9, B: 9})) == 0.0
