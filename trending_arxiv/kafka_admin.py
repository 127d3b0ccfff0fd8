"""Create the pipeline's topics up front, so no process subscribes to a missing topic.

aiokafka only refreshes metadata every few minutes, so a consumer that subscribed
before a topic existed could sit idle; creating every topic first removes that race.
"""

from __future__ import annotations

import contextlib
import logging

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from trending_arxiv.settings import CommonSettings

log = logging.getLogger(__name__)


def ensure_topics(settings: CommonSettings) -> list[str]:
    """Create whichever of the namespace's topics are missing; return those created."""
    admin = KafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers, client_id="trending-arxiv-admin"
    )
    try:
        existing = set(admin.list_topics())
        missing = [t for t in settings.all_topics if t not in existing]
        if missing:
            # Another process may win the race to create a topic; that is fine.
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics([NewTopic(t, settings.topic_partitions, 1) for t in missing])
            log.info("created topics %s", ", ".join(missing))
        return missing
    finally:
        admin.close()
