"""The page links the feed of the view it shows (headless Chromium, real server and data)."""

from __future__ import annotations

from collections.abc import Iterator

import feedparser
import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.webdata import seed_papers, seeded_namespace
from trending_arxiv.web.server import BackgroundServer

pytestmark = [pytest.mark.browser, pytest.mark.integration]


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    with seeded_namespace("feedlinks") as (_, settings), BackgroundServer(settings) as srv:
        yield srv.url


def _loaded(driver: webdriver.Chrome) -> None:
    WebDriverWait(driver, 15).until(
        lambda d: d.execute_script(
            "return !document.body.classList.contains('busy')"
            " && document.querySelectorAll('#papers > li.paper').length > 0"
        )
    )


def _links(driver: webdriver.Chrome) -> dict[str, str]:
    links: dict[str, str] = driver.execute_script(
        """
        const href = (selector) => document.querySelector(selector).href;
        return {
          atom: href('link[rel="alternate"][type="application/atom+xml"]'),
          rss: href('link[rel="alternate"][type="application/rss+xml"]'),
          visibleAtom: href('#feed-atom-link'),
          visibleRss: href('#feed-rss-link'),
        };
        """
    )
    return links


def test_page_links_the_feed_of_its_view(server_url: str, driver: webdriver.Chrome) -> None:
    driver.get(f"{server_url}/?window=all&sort=date")
    _loaded(driver)
    links = _links(driver)
    assert links["atom"] == f"{server_url}/feeds/trending.atom?window=all&sort=date"
    assert links["rss"] == f"{server_url}/feeds/trending.rss?window=all&sort=date"
    assert links["visibleAtom"] == links["atom"] and links["visibleRss"] == links["rss"]
    visible = driver.find_element(By.ID, "feed-atom-link")
    assert visible.is_displayed() and visible.text == "Atom"
    # The linked feed lists what the page shows, in the page's order.
    cards = driver.execute_script(
        "return [...document.querySelectorAll('#papers > li.paper')].map(li => li.dataset.arxivId)"
    )
    parsed = feedparser.parse(httpx.get(links["atom"]).content)
    assert [e.id.removeprefix("arxiv:") for e in parsed.entries] == cards
    assert cards == [p["arxiv_id"] for p in seed_papers()]

    # Another view: the links follow it.
    driver.find_element(By.CSS_SELECTOR, '#windows button[data-window="24h"]').click()
    WebDriverWait(driver, 10).until(lambda d: "window=24h" in _links(d)["atom"])
    _loaded(driver)
    links = _links(driver)
    assert links["rss"] == f"{server_url}/feeds/trending.rss?window=24h&sort=date"
    cards = driver.execute_script(
        "return [...document.querySelectorAll('#papers > li.paper')].map(li => li.dataset.arxivId)"
    )
    parsed = feedparser.parse(httpx.get(links["rss"]).content)
    assert [e.id.removeprefix("arxiv:") for e in parsed.entries] == cards
    assert 0 < len(cards) < len(seed_papers())
