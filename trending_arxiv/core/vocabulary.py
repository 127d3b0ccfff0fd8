"""The words the product speaks, declared once: windows, networks, post kinds, sorts.

Each is a `Literal` type (for pydantic, FastAPI, typer and mypy) and the tuple of its
values (for checks and loops; plain `str`s, as the data they check), the tuple derived
from the type so the two cannot drift.
"""

from __future__ import annotations

from typing import Literal, get_args

#: Counting windows, shortest first; "all" is all time.
Window = Literal["1h", "24h", "7d", "30d", "all"]
WINDOWS: tuple[str, ...] = get_args(Window)

#: The networks posts come from.
Source = Literal["x", "bluesky", "mastodon"]
SOURCES: tuple[str, ...] = get_args(Source)

#: What a post is to the paper it links.
Kind = Literal["post", "reply", "quote", "repost", "delete"]
KINDS: tuple[str, ...] = get_args(Kind)

#: Orders of a trending list; `field` is "unusual for its field"
#: (`trending_arxiv.core.field_baseline`, `trending_arxiv.search.field_ranking`).
Sort = Literal["posts", "accounts", "score", "date", "field"]
SORTS: tuple[str, ...] = get_args(Sort)

#: Orders of a search: relevance, or a trending order but `field` (a ranking of views).
SearchSort = Literal["relevance", "posts", "accounts", "score", "date"]
SEARCH_SORTS: tuple[str, ...] = get_args(SearchSort)

# Limits of a query, the same from the CLI, the HTTP API and code.
#: Most papers one query returns (a page of the API, a `top`/`search` listing).
MAX_PAGE_SIZE = 1000
#: Elasticsearch's default index.max_result_window: offset + limit never go past it.
MAX_RESULT_WINDOW = 10_000
#: Longest search text.
MAX_SEARCH_TEXT = 1000
#: Longest user name (whose follow list ranks the papers).
MAX_USER_NAME = 256
