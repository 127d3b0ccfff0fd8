# Image of our processes (producer, worker, sink, api, alerts, kibana-setup); see
# docker-compose.yml. Build: docker build -t trending-arxiv:local .
FROM python:3.11-slim

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
RUN pip install .

# Run as an unprivileged user; the worker keeps its Faust state under /var/lib/trending-arxiv
# (a named volume in docker-compose.yml inherits this ownership).
RUN useradd --create-home --uid 10001 trending \
    && mkdir -p /var/lib/trending-arxiv/faust \
    && chown -R trending /var/lib/trending-arxiv
USER trending

EXPOSE 8000
CMD ["trending-arxiv", "--help"]
