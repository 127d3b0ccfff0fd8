"""`trending-arxiv demo`: the whole pipeline on real Kafka and Elasticsearch, one command.

Brings the local stack up if needed, takes a fresh namespace (its own topics and
indices), starts the stream worker and the sink as child processes, replays the
input through Kafka, waits until Elasticsearch holds exactly what the reference
simulation says it should, and returns the ranked papers.
"""

from __future__ import annotations

import contextlib
import math
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from rich.console import Console

from trending_arxiv.core.models import Alert
from trending_arxiv.core.simulate import read_lines, simulate
from trending_arxiv.core.vocabulary import MAX_PAGE_SIZE
from trending_arxiv.devstack.pipeline import PipelineProcesses, ProcessExited, pipeline_env
from trending_arxiv.kafka import ensure_topics
from trending_arxiv.settings import CommonSettings


class DemoError(RuntimeError):
    """The demo could not complete; the message says why and where to look."""


def bundled_sample_path() -> Path:
    return Path(str(resources.files("trending_arxiv") / "data" / "seed_posts.jsonl"))


def remove_namespace(settings: CommonSettings, force: bool = False) -> dict[str, list[str]]:
    """Delete one namespace's topics (the worker's changelogs and Faust's own topics too),
    consumer groups, indices and index templates; return what was removed by kind.

    Only names derived from this namespace are touched. Refuses (DemoError) while one of
    its consumer groups has live members, unless `force`.
    """
    from elasticsearch import Elasticsearch

    from sinks.alerts import AlertSettings, alerts_index
    from streams.app import app_id
    from trending_arxiv.kafka import delete_topics_and_groups, group_state
    from trending_arxiv.settings import SinkSettings, WorkerSettings

    namespace = settings.namespace
    worker = WorkerSettings(namespace=namespace)
    groups = [
        app_id(worker),
        f"{namespace}-{SinkSettings(namespace=namespace).sink_group_id}",
        f"{namespace}-{AlertSettings(namespace=namespace).alerts_group_id}",
    ]
    bootstrap = settings.kafka_bootstrap_servers
    if not force:
        for group in groups:
            _, members = group_state(bootstrap, group)
            if members:
                raise DemoError(
                    f"namespace {namespace!r} is in use: consumer group {group} has {members} "
                    "live members (stop its processes first, or pass --force)"
                )
    topics, gone_groups = delete_topics_and_groups(
        bootstrap, settings.all_topics, [app_id(worker) + "-"], groups
    )
    es = Elasticsearch(**settings.elasticsearch_client_kwargs())
    names = settings.indices
    wanted = [names.papers, names.mentions, names.follows, alerts_index(settings)]
    indices = [i for i in wanted if es.indices.exists(index=i)]
    if indices:
        es.indices.delete(index=indices)
    for template in wanted:
        es.options(ignore_status=404).indices.delete_index_template(name=template)
    return {"topics": topics, "consumer groups": gone_groups, "indices": indices}


def wait_until_counted(
    settings: CommonSettings,
    expected_posts: dict[str, int],
    expected_mentions: int,
    processes: PipelineProcesses,
    timeout: float,
    console: Console,
) -> None:
    """Poll Elasticsearch until papers and mentions match the reference exactly."""
    from elasticsearch import Elasticsearch, NotFoundError

    es = Elasticsearch(**settings.elasticsearch_client_kwargs())
    deadline = time.monotonic() + timeout
    seen: dict[str, int] = {}
    mentions = 0
    with console.status("counting in Kafka -> Faust -> Elasticsearch...") as status:
        while time.monotonic() < deadline:
            try:
                processes.check_alive()
            except ProcessExited as error:
                raise DemoError(str(error)) from error
            try:
                es.indices.refresh(index=[settings.indices.papers, settings.indices.mentions])
                mentions = es.count(index=settings.indices.mentions)["count"]
                # Done is the counts and mentions, not the metadata: a paper the catalog
                # doesn't know (and arXiv, off by default) is listed by its ID.
                hits = es.search(
                    index=settings.indices.papers,
                    query={"range": {"posts.all": {"gt": 0}}},
                    source_includes=["posts.all"],
                    size=10_000,
                )["hits"]["hits"]
                seen = {h["_id"]: h["_source"]["posts"]["all"] for h in hits}
            except NotFoundError:
                pass  # the sink hasn't created the indices yet
            status.update(
                f"counted {sum(seen.values())}/{sum(expected_posts.values())} posts, "
                f"{mentions}/{expected_mentions} mentions indexed"
            )
            if seen == expected_posts and mentions == expected_mentions:
                return
            time.sleep(0.5)
    raise DemoError(
        f"timed out after {timeout:.0f}s: Elasticsearch has {sum(seen.values())} of "
        f"{sum(expected_posts.values())} posts counted and {mentions} of {expected_mentions} "
        f"mentions; see the logs in {processes.log_dir}"
    )


@dataclass
class DemoResult:
    """What a demo run produced, and where (its namespace is still there)."""

    rows: list[dict]
    settings: CommonSettings
    alerts: list[Alert]
    work_dir: Path


def demo_inputs(input_path: Path | None) -> list[Path]:
    """The files to replay: the bundled sample, a file, or a folder's files (as
    `produce replay` takes them)."""
    from producers.replay import ReplayInputError, expand_inputs

    try:
        return expand_inputs([input_path or bundled_sample_path()])
    except ReplayInputError as error:
        raise DemoError(str(error)) from error


def read_alerts(
    settings: CommonSettings,
    expected_ids: set[str],
    processes: PipelineProcesses,
    timeout: float,
) -> list[Alert]:
    """Every alert on the namespace's alerts topic, in event-time order, once it holds
    at least the alerts of the reference (`expected_ids`)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False
    )
    try:
        topic = settings.topics.alerts
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        found: dict[str, Alert] = {}
        deadline = time.monotonic() + timeout
        while True:
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    alert = Alert.from_json(record.value)
                    found.setdefault(alert.alert_id, alert)
            if expected_ids <= set(found):
                # Anything already produced past what we read is read too.
                ends = consumer.end_offsets(partitions)
                if all(consumer.position(tp) >= ends[tp] for tp in partitions):
                    break
            elif time.monotonic() > deadline:
                missing = sorted(expected_ids - set(found))
                raise DemoError(
                    f"timed out waiting for {len(missing)} alerts ({', '.join(missing[:3])}"
                    f"{', ...' if len(missing) > 3 else ''}); see the logs in {processes.log_dir}"
                )
            try:
                processes.check_alive()
            except ProcessExited as error:
                raise DemoError(str(error)) from error
    finally:
        consumer.close()
    return sorted(found.values(), key=lambda a: (a.triggered_at, a.arxiv_id, a.rule))


def run_demo(
    input_path: Path | None, timeout: float, console: Console, keep: bool = True
) -> DemoResult:
    """Run the demo; return every counted paper, ranked by all-time posts, the alerts
    the input's own history triggered, and where. The namespace is left in place
    (`remove_namespace` removes it) unless the run fails and not `keep`."""
    from elasticsearch import Elasticsearch

    from producers.replay import replay
    from producers.settings import ProducerSettings
    from trending_arxiv.devstack.stack import StackError, ensure_stack
    from trending_arxiv.search.queries import TrendingQuery, top_papers
    from trending_arxiv.settings import WorkerSettings

    files = demo_inputs(input_path)
    name = input_path.name if input_path else files[0].name
    rules = WorkerSettings().alert_rules()
    reference = simulate(read_lines(files), alert_rules=rules)
    if not reference.counts:
        raise DemoError(f"{input_path or files[0]} has no post that links an arXiv paper")
    try:
        endpoints = ensure_stack(log=lambda line: console.print(f"[dim]{line}[/]"))
    except StackError as error:
        raise DemoError(f"could not start Kafka and Elasticsearch: {error}") from error

    namespace = f"demo-{uuid.uuid4().hex[:8]}"
    work_dir = Path(tempfile.mkdtemp(prefix=f"trending-arxiv-{namespace}-"))
    env = pipeline_env(
        endpoints.kafka_bootstrap_servers, endpoints.elasticsearch_url, namespace, work_dir
    )
    # The worker decides alerts once every partition's stream time has passed them
    # (`core.alert_clock`), which takes each partition's posts in event-time order: a
    # file not quite in order is still exact with the lateness its disorder needs.
    env["TRENDING_ALERT_LATENESS_SECONDS"] = str(math.ceil(reference.disorder_seconds) + 1)
    settings = CommonSettings(
        kafka_bootstrap_servers=endpoints.kafka_bootstrap_servers,
        elasticsearch_url=endpoints.elasticsearch_url,
        namespace=namespace,
    )
    console.print(f"namespace [bold]{namespace}[/]; logs in {work_dir}")
    processes = PipelineProcesses(env=env, log_dir=work_dir)
    ensure_topics(settings)
    try:
        processes.start("worker", "worker")
        processes.start("sink", "sink")
        producer_settings = ProducerSettings(
            kafka_bootstrap_servers=endpoints.kafka_bootstrap_servers, namespace=namespace
        )
        summary = replay(files, producer_settings, progress=console.is_terminal, console=console)
        console.print(f"replayed {summary.sent} posts from {name}")
        started = time.monotonic()
        wait_until_counted(
            settings,
            reference.posts_by_paper,
            len(reference.mention_ids),
            processes,
            timeout,
            console,
        )
        alerts = read_alerts(
            settings,
            {a.alert_id for a in reference.alerts},
            processes,
            max(10.0, timeout - (time.monotonic() - started)),
        )
        es = Elasticsearch(**settings.elasticsearch_client_kwargs())
        rows = top_papers(
            es,
            settings,
            TrendingQuery(
                window="all",
                sort="posts",
                limit=min(MAX_PAGE_SIZE, max(1, len(reference.counts))),
            ),
        )
    except BaseException:
        processes.stop()
        if not keep:
            with contextlib.suppress(Exception):
                remove_namespace(settings, force=True)
        raise
    processes.stop()
    return DemoResult(rows=rows, settings=settings, alerts=alerts, work_dir=work_dir)


def print_alerts(alerts: list[Alert], as_json: bool, console: Console) -> None:
    """The alerts after the ranking, one line each in event-time order: on standard
    output, or (with --json, whose standard output is one paper per line) on standard
    error."""
    lines = [
        f"{alert.triggered_at:%Y-%m-%d %H:%M}  {alert.arxiv_id}  {alert.rule:<11}  {alert.reason}"
        for alert in alerts
    ]
    if as_json:
        for alert in alerts:
            console.print(f"alert {alert.alert_id}: {alert.reason}", soft_wrap=True, markup=False)
        return
    out = sys.stdout
    out.write(f"\nAlerts the input's own history triggered ({len(alerts)}, event time UTC):\n")
    out.write("\n".join(lines) + "\n" if lines else "none: no paper crossed a threshold\n")
    out.flush()


def serve_page(
    settings: CommonSettings, port: int, seconds: float | None, console: Console
) -> None:
    """Serve the web page over the demo's namespace (until Ctrl-C, or for `seconds`)."""
    from trending_arxiv.web.server import BackgroundServer, free_port

    try:
        server = BackgroundServer(settings, port=port).start()
    except (OSError, RuntimeError):
        server = BackgroundServer(settings, port=free_port()).start()
    console.print(
        f"[bold]Trending arXiv page:[/] {server.url}/?window=all&sort=date "
        f"(API docs {server.url}/docs) — Ctrl-C to stop"
    )
    try:
        if seconds is None:
            while True:
                time.sleep(3600)
        time.sleep(seconds)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
