"""Create the pipeline's topics up front, so no process subscribes to a missing topic.

aiokafka only refreshes metadata every few minutes, so a consumer that subscribed
before a topic existed could sit idle; creating every topic first removes that race.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from functools import lru_cache

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import MemberToRemove, NewTopic
from kafka.errors import (
    CoordinatorNotAvailableError,
    NoError,
    TopicAlreadyExistsError,
    UnknownMemberIdError,
)

from trending_arxiv.core.murmur import murmur2
from trending_arxiv.settings import CommonSettings


@lru_cache(maxsize=1 << 17)
def key_hash(key: bytes) -> int:
    """Kafka's default partitioner hash of a key (murmur2, positive). Remembered: most
    keys the worker places repeat (papers), and a hash costs ~0.5 µs compiled, ~8 as
    Python (`trending_arxiv.core.murmur`)."""
    return murmur2(key) & 0x7FFFFFFF


def partition_of(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner gives a record keyed `key`."""
    return key_hash(key) % partitions


def partition_of_once(key: bytes, partitions: int) -> int:
    """`partition_of` for a key placed about once (a post id): not remembered, so such
    keys do not push the repeating ones (papers) out of the cache, nor hold ~180 bytes
    each in it."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


log = logging.getLogger(__name__)
# Consumers that only read metadata and offsets belong to no group, so they commit nothing:
# saying so up front keeps kafka-python from warning "group_id is None: disabling
# auto-commit" at every call (the worker's stall watchdog makes one every few seconds).
_NO_GROUP = {"group_id": None, "enable_auto_commit": False}


def ensure_topics(settings: CommonSettings, compacted: Sequence[str] = ()) -> list[str]:
    """Create whichever of the namespace's topics are missing; return those created.

    `compacted` names extra topics (Faust table changelogs) created with
    `cleanup.policy=compact`, so no process races the broker's metadata for them.
    """
    admin = KafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers, client_id="trending-arxiv-admin"
    )
    try:
        existing = set(admin.list_topics())
        wanted = [*settings.all_topics, *compacted]
        missing = [t for t in wanted if t not in existing]
        if missing:
            new_topics = [
                NewTopic(
                    t,
                    settings.topic_partitions,
                    settings.topic_replication_factor,
                    topic_configs={
                        **settings.topic_configs,
                        **({"cleanup.policy": "compact"} if t in compacted else {}),
                    },
                )
                for t in missing
            ]
            # Another process may win the race to create a topic; that is fine.
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(new_topics)
            log.info("created topics %s", ", ".join(missing))
        wait_for_topics(settings.kafka_bootstrap_servers, wanted)
        return missing
    finally:
        admin.close()


def wait_for_topics(bootstrap_servers: str, topics: list[str], timeout: float = 30.0) -> None:
    """Block until every topic has partitions in the cluster metadata.

    Creation returns before the broker's metadata shows the topic; a consumer that
    joins its group in that gap is assigned nothing and (kafka-python) never rebalances.
    """
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, **_NO_GROUP)
    try:
        deadline = time.monotonic() + timeout
        while True:
            known = consumer.topics()  # a fresh metadata request each call
            missing = [t for t in topics if t not in known or not consumer.partitions_for_topic(t)]
            if not missing:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"topics not visible after {timeout:.0f}s: {missing}")
            time.sleep(0.2)
    finally:
        consumer.close()


def subscribe_with_metadata(
    consumer: KafkaConsumer, topics: list[str], timeout: float = 30.0
) -> None:
    """Subscribe `consumer` and refresh its metadata until it has every partition.

    All before the first poll joins the group: kafka-python 3.0.12 otherwise joins
    with an empty metadata snapshot, assigns nothing and rejoins at once; when a poll
    times out during that second join the member is left for good in a state where
    every commit fails with RebalanceInProgress and it never rejoins.
    """
    consumer.subscribe(topics)
    deadline = time.monotonic() + timeout
    while True:
        consumer.topics()  # a metadata refresh, which also updates the group's snapshot
        if all(consumer.partitions_for_topic(t) for t in topics):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"no partition metadata for {topics} after {timeout:.0f}s")
        time.sleep(0.2)


def partition_count(bootstrap_servers: str, topic: str) -> int:
    """How many partitions `topic` has (0 if the cluster does not know it)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, **_NO_GROUP)
    try:
        return len(consumer.partitions_for_topic(topic) or ())
    finally:
        consumer.close()


def group_offsets(
    bootstrap_servers: str, group: str, topics: Sequence[str], timeout_ms: int = 10_000
) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
    """`group`'s committed offsets and the log-end offsets of every partition of `topics`.

    A partition the group has not committed is missing from the first dict. Raises
    KafkaError (or OSError) when Kafka does not answer within about `timeout_ms`.
    """
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap_servers, client_id="trending-arxiv-offsets",
        request_timeout_ms=timeout_ms,
    )  # fmt: skip
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=timeout_ms, **_NO_GROUP
    )
    try:
        found = admin.list_group_offsets(group).get(group, {})
        committed = {tp: meta.offset for tp, meta in found.items() if meta.offset >= 0}
        partitions = [
            TopicPartition(t, p) for t in topics for p in (consumer.partitions_for_topic(t) or ())
        ]
        ends = consumer.end_offsets(partitions) if partitions else {}
        return {tp: committed[tp] for tp in partitions if tp in committed}, dict(ends)
    finally:
        consumer.close()
        admin.close()


def remove_group_member(
    bootstrap_servers: str, group: str, member_id: str, timeout_ms: int = 5_000
) -> bool:
    """Ask `group`'s coordinator to drop `member_id`, as if that member had left.

    For a member that cannot leave by itself (its own client lost the coordinator): the
    group then rebalances at once instead of waiting out the member's session timeout.
    True if the broker removed it; False if it was no longer a member. Raises KafkaError
    (or OSError) when Kafka does not answer within about `timeout_ms`.
    """
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap_servers, client_id="trending-arxiv-leave",
        request_timeout_ms=timeout_ms,
    )  # fmt: skip
    try:
        results = admin.remove_group_members(group, [MemberToRemove(member_id=member_id)])
        error = results.get(member_id)
        if error is None or error is NoError:
            return True
        if error is UnknownMemberIdError:
            return False
        raise error(f"removing member {member_id} from {group}")
    finally:
        admin.close()


def consumer_lags(
    bootstrap_servers: str, groups: dict[str, Sequence[str]], timeout_ms: int = 5_000
) -> tuple[dict[str, int | None], dict[str, int]]:
    """Each group's lag (records of its topics not yet committed) and each topic's end offset.

    One admin client and one consumer for every group (a status poll asks often). A topic
    with no partitions yet has end offset 0; a group Kafka has no coordinator for yet
    (it never committed) has lag None. Raises KafkaError (or OSError) when Kafka
    does not answer within about `timeout_ms`.
    """
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap_servers, client_id="trending-arxiv-status",
        request_timeout_ms=timeout_ms,
    )  # fmt: skip
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, request_timeout_ms=timeout_ms)
    try:
        topics = sorted({t for wanted in groups.values() for t in wanted})
        partitions = [
            TopicPartition(t, p) for t in topics for p in (consumer.partitions_for_topic(t) or ())
        ]
        ends: dict[TopicPartition, int] = consumer.end_offsets(partitions) if partitions else {}
        lags: dict[str, int | None] = {}
        for group, wanted in groups.items():
            try:
                found = admin.list_group_offsets(group).get(group, {})
            except CoordinatorNotAvailableError:
                lags[group] = None
                continue
            committed = {tp: meta.offset for tp, meta in found.items() if meta.offset >= 0}
            lags[group] = sum(
                end - committed.get(tp, 0) for tp, end in ends.items() if tp.topic in wanted
            )
        topic_ends = {t: sum(end for tp, end in ends.items() if tp.topic == t) for t in topics}
        return lags, topic_ends
    finally:
        consumer.close()
        admin.close()


def remove_all_members(bootstrap_servers: str, group: str, timeout_ms: int = 5_000) -> int:
    """Drop every member of `group`, as if each had left; return how many were dropped.

    For a group whose only consumer died without leaving (killed): its replacement is
    then assigned at once instead of after the dead member's session times out (Faust's
    is a minute). Any live member rejoins by itself. Raises KafkaError (or OSError) when
    Kafka does not answer within about `timeout_ms`.
    """
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap_servers, client_id="trending-arxiv-leave",
        request_timeout_ms=timeout_ms,
    )  # fmt: skip
    try:
        found = admin.describe_groups([group]).get(group, {})
        members = [m["member_id"] for m in found.get("members") or []]
        if members:
            admin.remove_group_members(group, [MemberToRemove(member_id=m) for m in members])
        return len(members)
    finally:
        admin.close()


def group_state(bootstrap_servers: str, group: str, timeout_ms: int = 10_000) -> tuple[str, int]:
    """(state, live members) of a consumer group as its coordinator describes it.

    A group nobody ever joined is "Dead" with 0 members. Raises KafkaError (or OSError)
    when Kafka does not answer.
    """
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap_servers, client_id="trending-arxiv-health",
        request_timeout_ms=timeout_ms,
    )  # fmt: skip
    try:
        info = admin.describe_groups([group]).get(group) or {}
        return str(info.get("group_state") or "Dead"), len(info.get("members") or ())
    finally:
        admin.close()


def delete_topics_and_groups(
    bootstrap_servers: str, topics: Sequence[str], topic_prefixes: Sequence[str],
    groups: Sequence[str],
) -> tuple[list[str], list[str]]:  # fmt: skip
    """Delete `topics`, topics starting with one of `topic_prefixes`, and `groups`
    (those that exist); return the topics and groups deleted."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="trending-arxiv-clean")
    try:
        existing = set(admin.list_topics())
        doomed = sorted(
            t for t in existing
            if t in topics or any(t.startswith(prefix) for prefix in topic_prefixes)
        )  # fmt: skip
        if doomed:
            admin.delete_topics(doomed)
        known_groups = {g.get("group_id") for g in admin.list_groups()}
        gone = [g for g in groups if g in known_groups]
        if gone:
            # A group with live members cannot be deleted; its owner is still running.
            with contextlib.suppress(Exception):
                admin.delete_groups(gone)
        return doomed, gone
    finally:
        admin.close()
