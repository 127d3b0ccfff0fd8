"""The page's journeys in headless Chromium against a real uvicorn server on real
Elasticsearch data (the seed papers in a fresh namespace): sparklines on one shared,
labelled time axis; "More papers" only when there are more; search within a user's
view; the API reference offline; a page per paper; no metrics link in the footer.

Screenshots land in test-artifacts/ (main.png, paper.png, user.png); the README's
copies in docs/screenshots/ come from there.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from elasticsearch import Elasticsearch
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.chrome import wait_loaded
from tests.webdata import seed_mentions, seed_papers, seeded_namespace
from trending_arxiv.core.models import parse_utc, to_utc_iso
from trending_arxiv.search.follows import store_follow_list
from trending_arxiv.settings import CommonSettings
from trending_arxiv.web.server import BackgroundServer

pytestmark = [pytest.mark.browser, pytest.mark.integration]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
HOT = "1602.02410"  # 142 seed posts, the only paper with more than 27
USER = "alice"


def _only_hot_paper_account() -> str:
    """An X account that posted the hot paper and no other seed paper."""
    others = {m.account for p in seed_papers() if p["arxiv_id"] != HOT for m in seed_mentions(p)}
    hot = next(p for p in seed_papers() if p["arxiv_id"] == HOT)
    return next(
        m.account for m in seed_mentions(hot) if m.source == "x" and m.account not in others
    )


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, Elasticsearch, CommonSettings]]:
    with seeded_namespace("pagejourney") as (es, settings), BackgroundServer(settings) as srv:
        store_follow_list(es, settings, USER, [_only_hot_paper_account()])
        yield srv.url, es, settings


def _card_ids(driver: webdriver.Chrome) -> list[str]:
    ids: list[str] = driver.execute_script(
        "return [...document.querySelectorAll('#papers > li.paper')].map(li => li.dataset.arxivId)"
    )
    return ids


def _screenshot(driver: webdriver.Chrome, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / name))
    assert (ARTIFACTS / name).stat().st_size > 10_000


def test_sparklines_share_one_labelled_time_axis_with_each_peak(
    server: tuple, driver: webdriver.Chrome
) -> None:
    url, _, _ = server
    seed = seed_papers()
    driver.get(f"{url}/?window=all&sort=date")
    wait_loaded(driver)
    WebDriverWait(driver, 10).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "svg.sparkline")) == len(seed)
    )
    sparks: list[dict[str, Any]] = driver.execute_script("""
      return [...document.querySelectorAll('#papers > li.paper')].map(li => {
        const svg = li.querySelector('svg.sparkline');
        return {id: li.dataset.arxivId, start: svg.dataset.start, end: svg.dataset.end,
                peak: svg.dataset.peak, peakText: li.querySelector('.spark-peak').textContent,
                ticks: [...svg.querySelectorAll('.spark-tick')].map(t => t.textContent)};
      });
    """)
    # One axis for every paper: the same first and last hour, labelled on each.
    assert len({(s["start"], s["end"]) for s in sparks}) == 1
    start, end = parse_utc(sparks[0]["start"]), parse_utc(sparks[0]["end"])
    assert (end - start).total_seconds() == 167 * 3600
    # It ends at the moment the counts are for (the stream's time the API answers with).
    newest = parse_utc(_ranking(url)["as_of"])
    assert end == newest.replace(minute=0, second=0, microsecond=0)
    for spark in sparks:
        assert len(spark["ticks"]) == 2 and all(spark["ticks"])
    # Each sparkline's peak is the highest hourly count of the paper on that axis.
    series = httpx.get(
        f"{url}/api/sparklines",
        params={
            "ids": ",".join(s["id"] for s in sparks),
            "hours": 168,
            "as_of": to_utc_iso(newest),
        },
    ).json()["series"]
    for spark in sparks:
        peak = max(series[spark["id"]]["counts"])
        assert spark["peak"] == str(peak)
        assert spark["peakText"] == f"peak {peak}/h"
    assert int(next(s for s in sparks if s["id"] == HOT)["peak"]) > 1
    legend = driver.find_element(By.ID, "spark-axis")
    assert legend.is_displayed() and "same 7 days for every paper" in legend.text
    _screenshot(driver, "main.png")


def _ranking(url: str) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(
        f"{url}/api/trending", params={"window": "all", "sort": "date", "limit": 100}
    ).json()
    return answer


def test_more_papers_shows_only_when_there_are_more(
    server: tuple, driver: webdriver.Chrome
) -> None:
    url, _, _ = server
    for query in ("q=slime+mold", "q=zzzznothing", "window=1h"):
        driver.get(f"{url}/?{query}")
        wait_loaded(driver)
        assert len(_card_ids(driver)) <= 2, query
        assert not driver.find_element(By.ID, "more").is_displayed(), query


def test_search_in_a_user_view_is_filtered_by_the_user(
    server: tuple, driver: webdriver.Chrome
) -> None:
    url, _, _ = server
    everyone = httpx.get(f"{url}/api/search", params={"q": "language"}).json()["papers"]
    assert HOT in [p["arxiv_id"] for p in everyone] and len(everyone) > 1
    driver.get(f"{url}/?window=all&q=language&user={USER}")
    wait_loaded(driver)
    assert _card_ids(driver) == [HOT]
    status = driver.find_element(By.ID, "status").text
    assert "language" in status and f"accounts {USER} follows posted" in status
    # The same through the API, and an unknown user is a clear 404.
    mine = httpx.get(f"{url}/api/search", params={"q": "language", "user": USER}).json()
    assert [p["arxiv_id"] for p in mine["papers"]] == [HOT] and mine["user"] == USER
    unknown = httpx.get(f"{url}/api/search", params={"q": "language", "user": "nobody"})
    assert unknown.status_code == 404 and "nobody" in unknown.json()["error"]


def test_user_view_screenshot(server: tuple, driver: webdriver.Chrome) -> None:
    url, _, _ = server
    # A window of replayed history, measured from the stream's time (one clock).
    driver.get(f"{url}/?window=7d&sort=posts&user={USER}")
    wait_loaded(driver)
    assert _card_ids(driver) == [HOT]
    WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, "svg.sparkline"))
    # The sparkline counts what the ranking counts: the followed account's one post.
    spark = driver.find_element(By.CSS_SELECTOR, f'li.paper[data-arxiv-id="{HOT}"] svg.sparkline')
    assert spark.get_attribute("data-peak") == "1"
    assert f"by accounts {USER} follows" in driver.find_element(By.ID, "spark-axis").text
    _screenshot(driver, "user.png")


def test_api_reference_is_served_without_internet(server: tuple, driver: webdriver.Chrome) -> None:
    url, _, _ = server
    page = httpx.get(f"{url}/docs").text
    # Nothing is loaded from another host: every script and style is the server's own.
    assert "http://" not in page.replace(url, "") and "https://" not in page
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert f'"/docs-assets/{asset}"' in page
        answer = httpx.get(f"{url}/docs-assets/{asset}")
        assert answer.status_code == 200 and len(answer.content) > 100_000
    driver.get(f"{url}/docs")
    WebDriverWait(driver, 20).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, ".swagger-ui .opblock-summary-path")
    )
    paths = {e.text for e in driver.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")}
    assert {"/api/trending", "/api/search", "/healthz"} <= {p.replace("\u200b", "") for p in paths}
    assert "Trending arXiv" in driver.find_element(By.CSS_SELECTOR, ".swagger-ui .info .title").text


def test_a_page_per_paper(server: tuple, driver: webdriver.Chrome) -> None:
    url, _, _ = server
    detail = httpx.get(f"{url}/api/papers/{HOT}", params={"posts_limit": 200}).json()
    driver.get(f"{url}/?window=all&sort=date")
    wait_loaded(driver)
    link = driver.find_element(By.CSS_SELECTOR, f'li.paper[data-arxiv-id="{HOT}"] a.arxiv-id')
    driver.execute_script("arguments[0].scrollIntoView()", link)
    link.click()
    WebDriverWait(driver, 15).until(
        lambda d: d.execute_script("return document.body.dataset.loaded")
    )
    assert driver.current_url == f"{url}/papers/{HOT}"
    assert driver.execute_script("return document.body.dataset.loaded") == "1"
    hot = next(p for p in seed_papers() if p["arxiv_id"] == HOT)
    assert driver.find_element(By.ID, "title").text == hot["title"]
    assert (
        driver.find_element(By.ID, "abs-link").get_attribute("href")
        == f"https://arxiv.org/abs/{HOT}"
    )
    rows = driver.execute_script("""
      return Object.fromEntries([...document.querySelectorAll('#windows tbody tr')].map(
        r => [r.dataset.window, [r.querySelector('.posts').textContent,
                                 r.querySelector('.accounts').textContent]]));
    """)
    for window, (posts, accounts) in rows.items():
        assert int(posts) == detail["posts_by_window"][window]
        assert int(accounts) == detail["accounts_by_window"][window]
    assert int(rows["all"][0]) == hot["seed_posts"] == 142
    chart = driver.find_element(By.CSS_SELECTOR, "#timeline svg.timeline-chart")
    counts = [bucket["count"] for bucket in detail["histogram"]]
    assert chart.get_attribute("data-peak") == str(max(counts))
    assert chart.get_attribute("data-hours") == str(len(counts))
    assert len(driver.find_elements(By.CSS_SELECTOR, "#timeline .timeline-bar")) == sum(
        1 for c in counts if c
    )
    ticks = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#timeline .x-tick")]
    assert ticks[-1] == datetime.fromisoformat(detail["histogram"][-1]["hour"]).strftime(
        "%Y-%m-%d %H:%M"
    )
    posts = driver.find_elements(By.CSS_SELECTOR, "#posts li.post")
    assert len(posts) == detail["mentions_total"] == 142
    _screenshot(driver, "paper.png")
    # A paper nobody posted is a clear message, not a blank page.
    driver.get(f"{url}/papers/2401.00001")
    WebDriverWait(driver, 15).until(
        lambda d: d.execute_script("return document.body.dataset.loaded")
    )
    assert "not known here" in driver.find_element(By.ID, "status").text


def test_metrics_are_not_linked_from_the_public_footer(
    server: tuple, driver: webdriver.Chrome
) -> None:
    url, _, _ = server
    driver.get(f"{url}/?window=all")
    wait_loaded(driver)
    footer_links = [
        a.get_attribute("href") for a in driver.find_elements(By.CSS_SELECTOR, "footer a")
    ]
    assert f"{url}/docs" in footer_links
    assert not [href for href in footer_links if href and "metrics" in href]
    assert httpx.get(f"{url}/metrics").status_code == 200  # still there for Prometheus
