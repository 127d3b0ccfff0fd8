"""The arXiv client against recorded Atom responses served on 127.0.0.1 (real `arxiv` package)."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator

import pytest

from sinks.arxiv_client import ArxivMetadataClient, ArxivUnavailableError
from tests.fakes.arxiv import FakeArxiv


@pytest.fixture
def fake() -> Iterator[FakeArxiv]:
    with FakeArxiv() as server:
        yield server


def client_for(fake: FakeArxiv, **overrides: float) -> ArxivMetadataClient:
    options: dict = {"delay_seconds": 0.0, "backoff_seconds": 0.01, "max_backoff_seconds": 0.05}
    options.update(overrides)
    return ArxivMetadataClient(api_url=fake.api_url, **options)


def test_one_new_style_id_gives_full_metadata(fake: FakeArxiv) -> None:
    result = client_for(fake).fetch(["1605.08386"])
    assert result.not_found == []
    paper = result.found["1605.08386"]
    assert paper["title"].startswith("Heat-bath random walks with Markov bases")
    assert paper["authors"] == ["Caprice Stanley", "Tobias Windisch"]
    assert paper["primary_category"] == "math.CO"
    assert "math.CO" in paper["categories"]
    assert paper["published"] == "2016-05-26T17:59:46Z"
    assert "\n" not in paper["abstract"]
    assert fake.requests_to("/api/query")[0].param("id_list") == "1605.08386"


def test_old_style_ids_and_journal_ref(fake: FakeArxiv) -> None:
    result = client_for(fake).fetch(["astro-ph/0601001", "quant-ph/0201082"])
    assert set(result.found) == {"astro-ph/0601001", "quant-ph/0201082"}
    paper = result.found["astro-ph/0601001"]
    assert paper["journal_ref"] == "ActaAstron.56:1-50,2006"
    assert paper["authors"][0] == "Andrew Gould"
    assert "ogle_hot_jupiters" in paper["comment"]
    # Both IDs went in one request.
    assert len(fake.request_log) == 1
    assert fake.request_log[0][1] == "astro-ph/0601001,quant-ph/0201082"


def test_missing_id_silently_dropped_is_recorded_not_found(fake: FakeArxiv) -> None:
    result = client_for(fake).fetch(["0808.05394", "1707.08567"])
    assert list(result.found) == ["1707.08567"]
    assert result.not_found == ["0808.05394"]


def test_empty_feed_means_not_found(fake: FakeArxiv) -> None:
    result = client_for(fake).fetch(["0000.0000"])
    assert result.found == {}
    assert result.not_found == ["0000.0000"]
    assert len(fake.request_log) == 1


def test_legacy_placeholders_and_overcounted_total(fake: FakeArxiv) -> None:
    ids = ["2201.13455", "2201.13452", "2201.13453", "2201.13454"]
    result = client_for(fake).fetch(ids)
    assert list(result.found) == ["2201.13452"]
    assert result.found["2201.13452"]["title"].startswith("Asymptotic Analysis for a Nonlinear")
    assert sorted(result.not_found) == ["2201.13453", "2201.13454", "2201.13455"]
    # totalResults=4 made the library ask for a second page once; that is the end.
    assert [start for _t, _ids, start in fake.request_log] == [0, 1]


def test_legacy_total_without_entries_is_not_found(fake: FakeArxiv) -> None:
    result = client_for(fake).fetch(["1201.56789"])
    assert result.not_found == ["1201.56789"]


def test_http_400_is_bisected_to_the_malformed_id(fake: FakeArxiv) -> None:
    result = client_for(fake).fetch(["abc", "1605.08386", "2104.12255"])
    assert set(result.found) == {"1605.08386", "2104.12255"}
    assert result.not_found == ["abc"]
    lists = [ids for _t, ids, _s in fake.request_log]
    assert lists[0] == "abc,1605.08386,2104.12255"
    assert "abc" in lists  # the culprit ends up alone, and is not retried


def test_transient_errors_are_retried_with_backoff(fake: FakeArxiv) -> None:
    fake.fail_next = 2
    client = client_for(fake, backoff_seconds=0.1, max_backoff_seconds=1.0)
    result = client.fetch(["2104.12255"])
    assert "2104.12255" in result.found
    times = [t for t, _ids, _s in fake.request_log]
    assert len(times) == 3
    # Exponential back-off: the second wait is longer than the first.
    assert times[2] - times[1] > times[1] - times[0] >= 0.09


def test_gives_up_after_max_attempts(fake: FakeArxiv) -> None:
    fake.fail_next = 100
    client = client_for(fake, max_attempts=3)
    with pytest.raises(ArxivUnavailableError, match="3 attempts"):
        client.fetch(["2104.12255"])
    assert len(fake.request_log) == 3


def test_unreachable_server_is_unavailable_not_a_crash() -> None:
    client = ArxivMetadataClient(
        api_url="http://127.0.0.1:9/api/query",
        delay_seconds=0,
        max_attempts=2,
        backoff_seconds=0.01,
        timeout_seconds=2,
    )
    with pytest.raises(ArxivUnavailableError):
        client.fetch(["2104.12255"])


def test_batches_and_spacing_between_requests(fake: FakeArxiv) -> None:
    ids = ["1605.08386", "2104.12255", "astro-ph/0601001", "quant-ph/0201082", "1707.08567"]
    client = client_for(fake, delay_seconds=0.3)
    client.batch_size = 2
    client._client.page_size = 2
    result = client.fetch(ids)
    assert set(result.found) == set(ids)
    assert [len(i.split(",")) for _t, i, _s in fake.request_log] == [2, 2, 1]
    times = [t for t, _i, _s in fake.request_log]
    assert all(b - a >= 0.29 for a, b in itertools.pairwise(times))


def test_one_connection_at_a_time_across_threads(fake: FakeArxiv) -> None:
    client = client_for(fake)
    errors: list[BaseException] = []

    def work(arxiv_id: str) -> None:
        try:
            assert arxiv_id in client.fetch([arxiv_id]).found
        except BaseException as error:  # collected for the main thread
            errors.append(error)

    threads = [
        threading.Thread(target=work, args=(i,)) for i in ("1605.08386", "2104.12255", "1707.08567")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert len(fake.request_log) == 3
    assert fake.max_in_flight == 1


def test_refuses_to_hammer_the_real_arxiv() -> None:
    with pytest.raises(ValueError, match="3 seconds"):
        ArxivMetadataClient(api_url="https://export.arxiv.org/api/query", delay_seconds=1)
