"""`trending-arxiv demo`: the whole pipeline on real Kafka and Elasticsearch, one command.

Brings the local stack up if needed, takes a fresh namespace (its own topics and
indices), starts the stream worker and the sink as child processes, replays the
input through Kafka, waits until Elasticsearch holds exactly what the reference
simulation says it should, and returns the ranked papers.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from importlib import resources
from pathlib import Path

from rich.console import Console

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
                hits = es.search(
                    index=settings.indices.papers,
                    query={"range": {"posts.all": {"gt": 0}}},
                    source_includes=["posts.all", "title"],
                    size=10_000,
                )["hits"]["hits"]
                seen = {
                    h["_id"]: h["_source"]["posts"]["all"]
                    for h in hits
                    if h["_source"].get("title")
                }
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


def run_demo(
    input_file: Path | None, timeout: float, console: Console
) -> tuple[list[dict], CommonSettings]:
    """Run the demo; return every counted paper, ranked by all-time posts, and where."""
    from elasticsearch import Elasticsearch

    from producers.replay import replay
    from producers.settings import ProducerSettings
    from trending_arxiv.devstack.stack import StackError, ensure_stack
    from trending_arxiv.search.queries import TrendingQuery, top_papers

    path = input_file or bundled_sample_path()
    if not path.exists():
        raise DemoError(f"input file {path} does not exist")
    reference = simulate(read_lines([path]))
    if not reference.counts:
        raise DemoError(f"{path} has no post that links an arXiv paper")
    try:
        endpoints = ensure_stack(log=lambda line: console.print(f"[dim]{line}[/]"))
    except StackError as error:
        raise DemoError(f"could not start Kafka and Elasticsearch: {error}") from error

    namespace = f"demo-{uuid.uuid4().hex[:8]}"
    work_dir = Path(tempfile.mkdtemp(prefix=f"trending-arxiv-{namespace}-"))
    env = pipeline_env(
        endpoints.kafka_bootstrap_servers, endpoints.elasticsearch_url, namespace, work_dir
    )
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
        summary = replay([path], producer_settings, progress=console.is_terminal, console=console)
        console.print(f"replayed {summary.sent} posts from {path.name}")
        wait_until_counted(
            settings,
            reference.posts_by_paper,
            len(reference.mention_ids),
            processes,
            timeout,
            console,
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
    finally:
        processes.stop()
    return rows, settings


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
