"""The local Kafka: a single KRaft node (broker + controller in one JVM) run as the current user."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import uuid

from trending_arxiv.devstack.config import (
    TEMPLATES,
    Log,
    StackError,
    StackPaths,
    StackSettings,
    render_template,
)
from trending_arxiv.devstack.java import find_kafka_java
from trending_arxiv.devstack.maven import fetch_kafka
from trending_arxiv.devstack.pidfiles import (
    check_ports_free,
    our_pid,
    port_open,
    rotate_log,
    wait_until,
)


def kafka_answers(bootstrap_servers: str, timeout: float = 5.0) -> bool:
    """True if a Kafka broker at `bootstrap_servers` answers a metadata request."""
    first = bootstrap_servers.split(",")[0].strip()
    host, _, port = first.rpartition(":")
    if not port.isdigit() or not port_open(host or "127.0.0.1", int(port), timeout=timeout):
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


def kafka_pid(paths: StackPaths, settings: StackSettings) -> int | None:
    return our_pid(paths.kafka_pid, str(paths.kafka_config), settings.kafka_port)


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
    pid = kafka_pid(paths, settings)
    if pid is None:
        check_ports_free(
            settings,
            {settings.kafka_port: "Kafka", settings.kafka_controller_port: "Kafka controller"},
        )
        java = find_kafka_java(settings)
        fetch_kafka(settings, paths, log)
        paths.kafka.mkdir(parents=True, exist_ok=True)
        paths.kafka_data.mkdir(exist_ok=True)
        render_template(
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
        rotate_log(paths.kafka_log)
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
    wait_until(
        lambda: kafka_answers(settings.kafka_address, timeout=3),
        pid=pid,
        timeout=settings.kafka_start_timeout,
        what=f"Kafka on {settings.kafka_address}",
        log_file=paths.kafka_log,
    )
    return pid
