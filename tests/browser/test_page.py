"""The page in headless Chromium (Debian's, driven by Selenium) against a real uvicorn
server on real Elasticsearch data (the 20 seed papers in a fresh namespace)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from elasticsearch import Elasticsearch
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.chrome import wait_loaded
from tests.fakes.paths import REPO
from tests.webdata import EVIL_PAPER, EVIL_TEXT, seed_documents, seed_papers, seeded_namespace
from trending_arxiv.search.queries import TrendingQuery, top_papers
from trending_arxiv.settings import CommonSettings
from trending_arxiv.web.server import BackgroundServer

pytestmark = [pytest.mark.browser, pytest.mark.integration]
ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, Elasticsearch, CommonSettings]]:
    with seeded_namespace("pagetest") as (es, settings), BackgroundServer(settings) as srv:
        yield srv.url, es, settings


def _cards(driver: webdriver.Chrome) -> list[dict]:
    script = """
      return [...document.querySelectorAll('#papers > li.paper')].map(li => ({
        id: li.dataset.arxivId,
        title: li.querySelector('.title-link').textContent,
        href: li.querySelector('.title-link').href,
        count: li.querySelector('.count').textContent,
        accounts: li.querySelector('.accounts').textContent,
        abstract: li.querySelector('.abstract').textContent,
        authors: li.querySelector('.authors').textContent,
        pdf: li.querySelector('.pdf') && li.querySelector('.pdf').href,
      }));
    """
    cards: list[dict] = driver.execute_script(script)
    return cards


def test_seed_replica_sorted_by_date(server: tuple, driver: webdriver.Chrome) -> None:
    url, _, _ = server
    driver.get(f"{url}/?window=all&sort=date")
    wait_loaded(driver)
    seed = seed_papers()
    WebDriverWait(driver, 10).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "svg.sparkline")) == len(seed)
    )
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / "page.png"))  # kept whatever the outcome
    assert (ARTIFACTS / "page.png").stat().st_size > 10_000
    cards = _cards(driver)
    assert [c["id"] for c in cards] == [p["arxiv_id"] for p in seed]
    for card, paper in zip(cards, seed, strict=True):
        assert card["title"] == paper["title"]
        assert card["count"] == f"Captured tweets and retweets: {paper['seed_posts']}"
        assert card["abstract"] == paper["abstract"]
        assert card["authors"].startswith(paper["authors"][0])
        assert card["href"] == f"https://arxiv.org/abs/{paper['arxiv_id']}"
        assert card["pdf"] == f"https://arxiv.org/pdf/{paper['arxiv_id']}"


def test_window_switch_and_sort(server: tuple, driver: webdriver.Chrome) -> None:
    url, _, _ = server
    papers, _ = seed_documents()
    driver.get(f"{url}/?window=all&sort=posts")
    wait_loaded(driver)
    driver.find_element(By.CSS_SELECTOR, '#windows button[data-window="24h"]').click()
    wait_loaded(driver)
    expected = sorted(
        ((p["posts"]["24h"], p["arxiv_id"]) for p in papers if p["posts"]["24h"] > 0),
        key=lambda pair: (-pair[0], pair[1]),
    )
    cards = _cards(driver)
    assert [c["id"] for c in cards] == [i for _, i in expected]
    assert [c["count"] for c in cards] == [
        f"Captured tweets and retweets: {n}" for n, _ in expected
    ]
    assert "window=24h" in driver.current_url
    assert "in the last 24h" in cards[0]["accounts"]
    pressed = driver.find_element(By.CSS_SELECTOR, '#windows button[aria-pressed="true"]')
    assert pressed.text == "24h"


def test_search_box(server: tuple, driver: webdriver.Chrome) -> None:
    url, _, _ = server
    driver.get(f"{url}/?window=all&sort=date")
    wait_loaded(driver)
    box = driver.find_element(By.ID, "q")
    box.send_keys("slime mold")
    driver.find_element(By.CSS_SELECTOR, "#search-form button").click()
    wait_loaded(driver)
    cards = _cards(driver)
    assert cards and cards[0]["id"] == "1601.02712"
    assert "q=slime+mold" in driver.current_url
    assert "slime mold" in driver.find_element(By.ID, "status").text


def test_posts_expand_and_markup_is_shown_as_text(server: tuple, driver: webdriver.Chrome) -> None:
    url, _, _ = server
    driver.get(f"{url}/?window=all&sort=date")
    wait_loaded(driver)
    card = driver.find_element(By.CSS_SELECTOR, f'li.paper[data-arxiv-id="{EVIL_PAPER}"]')
    summary = card.find_element(By.CSS_SELECTOR, "details.posts summary")
    driver.execute_script("arguments[0].scrollIntoView()", summary)
    summary.click()
    WebDriverWait(driver, 10).until(
        lambda d: card.find_elements(By.CSS_SELECTOR, ".post .post-text")
    )
    text = card.find_element(By.CSS_SELECTOR, ".post .post-text")
    assert text.get_attribute("textContent") == EVIL_TEXT
    assert "<script>" in text.text  # visible as text
    assert card.find_elements(By.CSS_SELECTOR, ".post-list script, .post-list img") == []
    assert driver.execute_script("return window.__pwned === undefined")
    link = card.find_element(By.CSS_SELECTOR, ".post a.when")
    assert str(link.get_attribute("href")).startswith("https://x.com/")


def test_field_sort_and_how_ranking_works(server: tuple, driver: webdriver.Chrome) -> None:
    """The `field` sort shows each paper's percentile of its field, in the API's order;
    "How ranking works" explains it and sets the trend score's half-life."""
    url, es, settings = server
    driver.get(f"{url}/?window=all&sort=field")
    wait_loaded(driver)
    expected = top_papers(es, settings, TrendingQuery(window="all", sort="field", limit=20))
    cards = _cards(driver)
    assert [c["id"] for c in cards] == [row["arxiv_id"] for row in expected]
    first = expected[0]
    assert (
        f"percentile {first['field_percentile']:.0f} of {first['field']} "
        f"({first['field_papers']} papers)" in cards[0]["accounts"]
    )
    assert driver.find_element(By.ID, "sort").get_attribute("value") == "field"
    details = driver.find_element(By.CSS_SELECTOR, "#how-ranking-works details")
    details.find_element(By.TAG_NAME, "summary").click()
    assert "percentile" in details.text and "half-life" in details.text
    box = driver.find_element(By.ID, "half-life")
    box.send_keys("12")
    driver.find_element(By.CSS_SELECTOR, "#half-life-form button").click()
    wait_loaded(driver)
    assert "half_life=12" in driver.current_url and "sort=score" in driver.current_url
    assert driver.find_element(By.ID, "sort").get_attribute("value") == "score"
