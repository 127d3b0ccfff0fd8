# Image of our processes (producer, worker, sink, api, alerts, kibana-setup); see
# docker-compose.yml. Build: docker build -t trending-arxiv:local .
FROM python:3.11-slim AS source

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Packaging files first, so the dependency layer is reused while only code changes.
COPY setup.cfg pyproject.toml README.md ./
COPY trending_arxiv ./trending_arxiv
COPY producers ./producers
COPY streams ./streams
COPY sinks ./sinks

# The counting core compiled with mypyc (trending_arxiv/core/compiled.py: the worker's hot
# path), in a stage of its own: the image keeps the extensions, not the compiler. Same
# base image, so the build is for the interpreter that runs it.
FROM source AS native
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
COPY tools/build_native.py ./tools/build_native.py
# The dev extras pin mypy (mypyc); the sources are compiled where they are, in /app.
RUN pip install ".[dev]" && PYTHONPATH=/app python tools/build_native.py

FROM source
# Installed with the package (setup.cfg's package_data), used while its manifest matches.
COPY --from=native /app/trending_arxiv/core/_native ./trending_arxiv/core/_native
RUN pip install .

# Run as an unprivileged user; the worker keeps its Faust state under /var/lib/trending-arxiv
# (a named volume in docker-compose.yml inherits this ownership).
RUN useradd --create-home --uid 10001 trending \
    && mkdir -p /var/lib/trending-arxiv/faust \
    && chown -R trending /var/lib/trending-arxiv
USER trending

EXPOSE 8000
CMD ["trending-arxiv", "--help"]
