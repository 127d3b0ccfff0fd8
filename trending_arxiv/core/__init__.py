"""The pure core: IDs, posts, counting, alerting, documents (no Kafka, Faust or ES)."""

from trending_arxiv.core.compiled import search_path

# The counting core's compiled build comes first while it matches its sources.
__path__ = search_path(__path__)
