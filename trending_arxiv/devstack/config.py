"""Where and how the local stack runs: settings (`TRENDING_STACK_*`), folders, errors."""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from string import Template

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

TEMPLATES = Path(__file__).resolve().parent / "templates"
ES_FALLBACK_ROOT = Path("/var/tmp/trending-arxiv-stack")
ES_AREA_RECORD = "elasticsearch-area.txt"

Log = Callable[[str], None]


class StackError(RuntimeError):
    """Something the user has to fix (missing tool, taken port, server that won't start)."""


def _default_repo_root() -> Path:
    """The checkout this module lives in (editable install), else the working directory."""
    here = Path(__file__).resolve().parents[2]
    return here if (here / "setup.cfg").is_file() else Path.cwd()


class StackSettings(BaseSettings):
    """Where and how the local stack runs; environment variables `TRENDING_STACK_*`."""

    model_config = SettingsConfigDict(
        env_prefix="TRENDING_STACK_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    dir: Path = Field(
        default_factory=lambda: _default_repo_root() / ".stack",
        description="Folder of downloads, data, logs and PID files (git-ignored).",
    )
    host: str = "127.0.0.1"
    kafka_port: int = Field(default=9092, ge=1, le=65535)
    kafka_controller_port: int = Field(default=9093, ge=1, le=65535)
    kafka_version: str = "4.0.2"
    kafka_scala_version: str = "2.13"
    log4j_version: str = "2.24.3"
    kafka_heap: str = "512m"
    kafka_num_partitions: int = Field(default=1, ge=1)
    kafka_offsets_partitions: int = Field(default=4, ge=1)
    kafka_java: str | None = Field(default=None, description="java binary for Kafka (17+).")
    es_port: int = Field(default=9200, ge=1, le=65535)
    es_transport_port: int = Field(default=9300, ge=1, le=65535)
    es_version: str = "9.5.4"
    es_heap: str = "512m"
    es_java_home: Path | None = Field(default=None, description="JDK 21+ for Elasticsearch.")
    es_user: str = Field(default="trending-es", description="System user ES runs as when root.")
    maven: str = "mvn"
    kafka_start_timeout: float = Field(default=120.0, gt=0)
    es_start_timeout: float = Field(default=240.0, gt=0)
    stop_timeout: float = Field(default=45.0, gt=0)

    @field_validator("kafka_heap", "es_heap")
    @classmethod
    def _heap_size(cls, value: str) -> str:
        if not re.fullmatch(r"\d+[kmgKMG]?", value):
            raise ValueError(f"heap size must look like 512m or 1g (a -Xmx value), got {value!r}")
        return value

    @property
    def kafka_address(self) -> str:
        return f"{self.host}:{self.kafka_port}"

    @property
    def es_url(self) -> str:
        return f"http://{self.host}:{self.es_port}"


@dataclass(frozen=True)
class StackPaths:
    stack: Path
    kafka_libs: Path
    kafka: Path
    es_area: Path  # everything Elasticsearch touches (owned by the ES user)

    @property
    def kafka_pid(self) -> Path:
        return self.kafka / "kafka.pid"

    @property
    def kafka_log(self) -> Path:
        return self.kafka / "kafka.log"

    @property
    def kafka_config(self) -> Path:
        return self.kafka / "server.properties"

    @property
    def kafka_data(self) -> Path:
        return self.kafka / "data"

    @property
    def kafka_info(self) -> Path:
        return self.kafka / "kafka.json"

    def es_home(self, version: str) -> Path:
        return self.es_area / f"elasticsearch-{version}"

    @property
    def es_pid(self) -> Path:
        return self.es_area / "run" / "elasticsearch.pid"

    @property
    def es_logs(self) -> Path:
        return self.es_area / "logs"

    @property
    def es_log(self) -> Path:
        return self.es_logs / "trending-arxiv-local.log"

    @property
    def es_launcher_log(self) -> Path:
        return self.es_area / "launcher.log"


def _traversable_by_others(path: Path) -> bool:
    """Whether an unrelated user can enter every existing directory down to `path`."""
    current = path
    while not current.exists():
        current = current.parent
    for directory in [current, *current.parents]:
        mode = directory.stat().st_mode
        if not mode & stat.S_IXOTH:
            return False
    return True


def es_runs_as_other_user() -> bool:
    return os.geteuid() == 0


def stack_paths(settings: StackSettings) -> StackPaths:
    """Where everything of the stack in `settings.dir` lives."""
    stack = settings.dir.expanduser().resolve()
    try:
        # Decided once, at the first start, so that later calls find the same servers.
        es_area = Path((stack / ES_AREA_RECORD).read_text().strip())
    except OSError:
        es_area = stack / "elasticsearch"
        if es_runs_as_other_user() and not _traversable_by_others(stack):
            digest = hashlib.sha256(str(stack).encode()).hexdigest()[:12]
            es_area = ES_FALLBACK_ROOT / digest / "elasticsearch"
    return StackPaths(
        stack=stack,
        kafka_libs=stack / "downloads" / f"kafka-{settings.kafka_version}" / "libs",
        kafka=stack / "kafka",
        es_area=es_area,
    )


def render_template(template: str, target: Path, **values: object) -> None:
    text = Template((TEMPLATES / template).read_text()).substitute(values)
    target.write_text(text)
