"""`trending-arxiv alerts` on the real Kafka and Elasticsearch, delivering to a local HTTP
receiver: rules, retries, permanent failures, commits and once-only delivery across
restarts."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch
from kafka import KafkaProducer

from sinks.alerts import AlertDeliverer, AlertSettings, alerts_index, load_rules
from sinks.indices import ensure_indices
from tests.fakes.http import FakeHttpServer, Reply, Request
from trending_arxiv.core.models import Alert
from trending_arxiv.search.follows import store_follow_list

pytestmark = pytest.mark.integration


class Receiver(FakeHttpServer):
    def __init__(self) -> None:
        super().__init__()
        self.flaky_left = 2
        self.lock = threading.Lock()

    def handle(self, request: Request, reply: Reply) -> None:
        with self.lock:
            if request.path == "/flaky" and self.flaky_left:
                self.flaky_left -= 1
                reply.send_json(503, {"error": "busy"})
                return
        reply.send_json(404 if request.path == "/dead" else 200, {})


def _alert(arxiv_id: str, accounts: float, hour: int) -> Alert:
    return Alert(
        alert_id=f"{arxiv_id}:accounts_1h:2016-02-08T{hour:02d}",
        arxiv_id=arxiv_id,
        rule="accounts_1h",
        reason=f"{accounts:.0f} distinct accounts posted about {arxiv_id} within an hour",
        triggered_at=datetime(2016, 2, 8, hour, 30, tzinfo=UTC),
        numbers={"posts_1h": accounts, "accounts_1h": accounts, "posts_24h": accounts,
                 "velocity": 5.0, "trend_score": 1.0},
    )  # fmt: skip


def _run(settings: AlertSettings, rules: Path, es: Elasticsearch, group: str) -> dict[str, int]:
    settings = settings.model_copy(update={"alerts_group_id": group})
    deliverer = AlertDeliverer(settings, load_rules(rules), es=es)
    try:
        return deliverer.run(idle_exit_seconds=4.0)
    finally:
        deliverer.close()


def test_alerts_are_matched_retried_and_delivered_once(
    namespace: str, stack_endpoints: tuple[str, str], tmp_path: Path
) -> None:
    kafka, es_url = stack_endpoints
    settings = AlertSettings(
        kafka_bootstrap_servers=kafka, elasticsearch_url=es_url, namespace=namespace,
        alerts_retry_initial_seconds=0.05, alerts_max_retry_seconds=5.0,
    )  # fmt: skip
    es = Elasticsearch(es_url)
    ensure_indices(es, settings)
    es.index(index=settings.indices.papers, id="1602.02410", refresh=True,
             document={"arxiv_id": "1602.02410", "title": "Exploring the Limits",
                       "categories": ["cs.CL"]})  # fmt: skip
    es.index(index=settings.indices.papers, id="1512.03547", refresh=True,
             document={"arxiv_id": "1512.03547", "title": "Graph Isomorphism",
                       "categories": ["cs.DS", "math.GR"]})  # fmt: skip
    es.index(index=settings.indices.mentions, id="p1|1512.03547", refresh=True,
             document={"@timestamp": "2016-02-08T11:00:00Z", "arxiv_id": "1512.03547",
                       "account": "x:42", "source": "x"})  # fmt: skip
    store_follow_list(es, settings, "smerity", ["x:42"])
    with Receiver() as receiver:
        rules = tmp_path / "rules.yaml"
        rules.write_text(
            "targets:\n"
            f"  - {{name: hook, type: webhook, url: '{receiver.url}/hook'}}\n"
            f"  - {{name: slack, type: slack, url: '{receiver.url}/slack'}}\n"
            f"  - {{name: flaky, type: webhook, url: '{receiver.url}/flaky'}}\n"
            f"  - {{name: dead, type: webhook, url: '{receiver.url}/dead'}}\n"
            f"  - {{name: mine, type: webhook, url: '{receiver.url}/mine'}}\n"
            "rules:\n"
            "  - {name: everything, targets: [hook]}\n"
            "  - {name: nlp, targets: [slack], categories: ['cs.CL']}\n"
            "  - {name: big, targets: [flaky, dead], min: {accounts_1h: 25}}\n"
            "  - {name: followed, targets: [mine], users: [smerity]}\n"
        )
        nlp, graphs = _alert("1602.02410", 12, 10), _alert("1512.03547", 30, 12)
        producer = KafkaProducer(bootstrap_servers=kafka)
        for value in (nlp.to_json_bytes(), b"{not json", graphs.to_json_bytes(),
                      nlp.to_json_bytes()):  # fmt: skip
            producer.send(settings.topics.alerts, value=value)
        producer.flush()
        producer.close()

        stats = _run(settings, rules, es, f"{namespace}-first")
        assert stats["alerts"] == 3 and stats["unreadable"] == 1

        def bodies(path: str) -> list[str]:
            out = []
            for request in receiver.requests_to(path):
                body = request.json()
                out.append(body.get("alert_id") or body.get("text"))
            return out

        assert sorted(bodies("/hook")) == sorted([nlp.alert_id, graphs.alert_id])
        assert len(bodies("/slack")) == 1 and "Exploring the Limits" in bodies("/slack")[0]
        assert bodies("/flaky") == [graphs.alert_id] * 3  # two 503s, then delivered
        assert bodies("/dead") == [graphs.alert_id]  # 404: not retried
        assert bodies("/mine") == [graphs.alert_id]  # posted by an account smerity follows
        es.indices.refresh(index=alerts_index(settings))
        stored = es.get(index=alerts_index(settings), id=graphs.alert_id)["_source"]
        assert stored["delivered_to"] == ["flaky", "hook", "mine"]
        assert stored["failed_to"] == ["dead"]
        assert stored["categories"] == ["cs.DS", "math.GR"]
        assert stored["@timestamp"] == "2016-02-08T12:30:00Z"

        # Same group again: offsets were committed, nothing comes back.
        again = _run(settings, rules, es, f"{namespace}-first")
        assert again["alerts"] == 0
        # A new group re-reads the topic (as after lost offsets): the stored deliveries
        # keep every target that got an alert from getting it twice.
        before = len(receiver.requests)
        replay = _run(settings, rules, es, f"{namespace}-second")
        assert replay["alerts"] == 3 and replay["delivered"] == 0
        assert [r.path for r in receiver.requests[before:]] == ["/dead"]  # only the failed one
    es.close()
