"""Fetching the servers with Maven: Kafka's jars and the Elasticsearch zip, once each.

Maven caches them in `~/.m2`; the stack folder keeps an unpacked copy marked complete, so a
second `up` runs no Maven at all.
"""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

from trending_arxiv.devstack.config import TEMPLATES, Log, StackError, StackPaths, StackSettings

KAFKA_GROUP = "org.apache.kafka"
ES_ARTIFACT = "org.elasticsearch.distribution.integ-test-zip:elasticsearch"


def _maven(settings: StackSettings) -> str:
    mvn = shutil.which(settings.maven)
    if not mvn:
        raise StackError(
            f"Maven (`{settings.maven}`) is needed once to fetch Kafka and Elasticsearch from "
            "Maven Central but is not on PATH. Install it (e.g. `apt-get install maven`) "
            "or set TRENDING_STACK_MAVEN."
        )
    return mvn


def _maven_source(group: str, artifact: str, version: str, extension: str) -> str:
    """Where Maven will take an artifact from, for the progress message only."""
    cached = (
        Path.home()
        / ".m2"
        / "repository"
        / group.replace(".", "/")
        / artifact
        / version
        / f"{artifact}-{version}.{extension}"
    )
    return "the Maven cache (~/.m2)" if cached.is_file() else "Maven Central"


def _run_maven(settings: StackSettings, args: list[str], what: str) -> None:
    cmd = [_maven(settings), "-B", "-q", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        output = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
        raise StackError(f"Maven could not fetch {what} (exit {proc.returncode}):\n{output}")


_COMPLETE = ".complete"


def fetch_kafka(settings: StackSettings, paths: StackPaths, log: Log) -> None:
    """Kafka jars into the stack folder (once; Maven caches them in ~/.m2 as well)."""
    if (paths.kafka_libs / _COMPLETE).is_file():
        return
    source = _maven_source(
        KAFKA_GROUP, f"kafka_{settings.kafka_scala_version}", settings.kafka_version, "jar"
    )
    log(f"fetching Kafka {settings.kafka_version} jars from {source}...")
    if paths.kafka_libs.exists():
        shutil.rmtree(paths.kafka_libs)
    paths.kafka_libs.mkdir(parents=True)
    _run_maven(
        settings,
        [
            "-f",
            str(TEMPLATES / "kafka-pom.xml"),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={paths.kafka_libs}",
            "-DincludeScope=runtime",
            f"-Dkafka.version={settings.kafka_version}",
            f"-Dlog4j.version={settings.log4j_version}",
        ],
        f"Kafka {settings.kafka_version}",
    )
    if not any(paths.kafka_libs.glob(f"kafka_{settings.kafka_scala_version}-*.jar")):
        raise StackError(f"Maven ran but no Kafka jar appeared in {paths.kafka_libs}")
    (paths.kafka_libs / _COMPLETE).touch()


def _unzip(archive: Path, target: Path) -> None:
    """Extract keeping the Unix permission bits (zipfile drops them; bin/ needs +x)."""
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            extracted = Path(zf.extract(info, target))
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                extracted.chmod(mode)


def fetch_elasticsearch(settings: StackSettings, paths: StackPaths, log: Log) -> None:
    """The Elasticsearch zip, unpacked into its area (once; the zip stays in ~/.m2)."""
    home = paths.es_home(settings.es_version)
    if (home / _COMPLETE).is_file():
        return
    group, artifact = ES_ARTIFACT.split(":")
    source = _maven_source(group, artifact, settings.es_version, "zip")
    log(f"fetching Elasticsearch {settings.es_version} from {source}...")
    staging = paths.es_area / "staging"
    for stale in (staging, home):
        if stale.exists():
            shutil.rmtree(stale)
    staging.mkdir(parents=True)
    _run_maven(
        settings,
        [
            "dependency:copy",
            f"-Dartifact={ES_ARTIFACT}:{settings.es_version}:zip",
            f"-DoutputDirectory={staging}",
        ],
        f"Elasticsearch {settings.es_version}",
    )
    archive = staging / f"elasticsearch-{settings.es_version}.zip"
    if not archive.is_file():
        raise StackError(f"Maven ran but {archive} is missing")
    log(f"unpacking Elasticsearch {settings.es_version}...")
    _unzip(archive, staging)
    (staging / f"elasticsearch-{settings.es_version}").rename(home)
    shutil.rmtree(staging)
    (home / _COMPLETE).touch()
