"""The local Elasticsearch: the integration-test zip on a JDK 21+ (as a system user if root)."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx

from trending_arxiv.devstack.config import (
    ES_AREA_RECORD,
    ES_FALLBACK_ROOT,
    Log,
    StackError,
    StackPaths,
    StackSettings,
    es_runs_as_other_user,
    render_template,
)
from trending_arxiv.devstack.java import find_es_java_home
from trending_arxiv.devstack.maven import fetch_elasticsearch
from trending_arxiv.devstack.pidfiles import check_ports_free, our_pid, rotate_log, tail, wait_until
from trending_arxiv.settings import CommonSettings


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


def es_pid(paths: StackPaths, settings: StackSettings) -> int | None:
    return our_pid(paths.es_pid, str(paths.es_home(settings.es_version)), settings.es_port)


def _prepare_es_area(paths: StackPaths, settings: StackSettings, log: Log) -> tuple[int, int]:
    """Make the ES area usable by the user ES runs as; return that (uid, gid)."""
    for directory in ("data", "logs", "tmp", "run"):
        (paths.es_area / directory).mkdir(parents=True, exist_ok=True)
    (paths.stack / ES_AREA_RECORD).write_text(f"{paths.es_area}\n")
    home = paths.es_home(settings.es_version)
    render_template(
        "elasticsearch.yml",
        home / "config" / "elasticsearch.yml",
        host=settings.host,
        port=settings.es_port,
        transport_port=settings.es_transport_port,
        data_dir=paths.es_area / "data",
        logs_dir=paths.es_logs,
    )
    if not es_runs_as_other_user():
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
    pid = es_pid(paths, settings)
    if pid is None:
        check_ports_free(
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
        rotate_log(paths.es_launcher_log)
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
                f"Last lines of {paths.es_log}:\n{tail(paths.es_log)}\n"
                f"{paths.es_launcher_log}:\n{tail(paths.es_launcher_log, 15)}"
            ) from None
        pid = es_pid(paths, settings)
        if code != 0 or pid is None:
            raise StackError(
                f"Elasticsearch failed to start (launcher exit {code}). "
                f"Last lines of {paths.es_launcher_log}:\n{tail(paths.es_launcher_log)}\n"
                f"{paths.es_log}:\n{tail(paths.es_log, 20)}"
            )
    wait_until(
        lambda: es_health(settings.es_url, timeout=2) is not None,
        pid=pid,
        timeout=settings.es_start_timeout,
        what=f"Elasticsearch on {settings.es_url}",
        log_file=paths.es_log,
    )
    return pid
