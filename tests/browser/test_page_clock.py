"""The page's clock in headless Chromium: every view (the user box too) answers as of the
stream's time of the 2016 seed data, shows that moment, and a date/time control picks
another one (`as_of`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from elasticsearch import Elasticsearch
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.webdata import seed_documents, seeded_namespace
from trending_arxiv.search.follows import store_follow_list
from trending_arxiv.settings import CommonSettings
from trending_arxiv.web.server import BackgroundServer

pytestmark = [pytest.mark.browser, pytest.mark.integration]


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, Elasticsearch, CommonSettings]]:
    with seeded_namespace("clocktest") as (es, settings), BackgroundServer(settings) as srv:
        yield srv.url, es, settings


def _settled(driver: webdriver.Chrome) -> dict:
    WebDriverWait(driver, 15).until(
        lambda d: d.execute_script(
            "return !document.body.classList.contains('busy')"
            " && !['', 'Loading…'].includes(document.getElementById('status').textContent)"
        )
    )
    state: dict = driver.execute_script(
        "return {clock: document.getElementById('clock').textContent,"
        " status: document.getElementById('status').textContent,"
        " ids: [...document.querySelectorAll('#papers > li.paper')].map(li => li.dataset.arxivId),"
        " counts: [...document.querySelectorAll('#papers > li.paper .count')]"
        "   .map(n => n.textContent), url: location.search}"
    )
    return state


def test_the_user_box_shows_the_stream_time_and_the_control_picks_a_moment(
    server: tuple, driver: webdriver.Chrome
) -> None:
    url, es, settings = server
    _, mentions = seed_documents()
    # A reader who follows every account: their view is the whole 7-day ranking.
    store_follow_list(es, settings, "reader", sorted({m["account"] for m in mentions}))

    driver.get(f"{url}/?window=7d&sort=posts")
    plain = _settled(driver)
    assert plain["clock"] == "Counts as of 2016-02-09 00:00 UTC (the stream's time)"
    assert plain["ids"]

    user_box = driver.find_element(By.ID, "user")
    user_box.send_keys("reader")
    driver.find_element(By.CSS_SELECTOR, "#user-form button").click()
    WebDriverWait(driver, 15).until(lambda d: "user=reader" in d.current_url)
    followed = _settled(driver)
    # Measured from the stream's time (not today, when 2016's windows are empty).
    assert followed["clock"] == plain["clock"]
    assert (followed["ids"], followed["counts"]) == (plain["ids"], plain["counts"])

    # Pick a moment two days earlier: the windows end there, and the page says so.
    driver.execute_script("document.getElementById('as-of').value = '2016-02-07T00:00'")
    driver.find_element(By.CSS_SELECTOR, "#as-of-form button[type=submit]").click()
    WebDriverWait(driver, 15).until(lambda d: "as_of=2016-02-07" in d.current_url)
    earlier = _settled(driver)
    assert earlier["clock"] == "Counts as of 2016-02-07 00:00 UTC (picked)"
    assert earlier["counts"] != followed["counts"]

    driver.find_element(By.ID, "as-of-clear").click()
    WebDriverWait(driver, 15).until(lambda d: "as_of" not in d.current_url)
    assert _settled(driver)["clock"] == plain["clock"]


def test_posts_show_the_author_id_next_to_the_handle(
    server: tuple, driver: webdriver.Chrome
) -> None:
    """The id a follow list takes (x:123, bluesky:did:plc:...) is on every post shown."""
    url, _, _ = server
    driver.get(f"{url}/?window=all&sort=posts")
    _settled(driver)
    driver.find_element(By.CSS_SELECTOR, "#papers > li.paper details.posts summary").click()
    WebDriverWait(driver, 15).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#papers > li.paper .post .account-id")
    )
    heads = driver.execute_script(
        "return [...document.querySelectorAll('#papers > li.paper:first-child .post-head')]"
        ".map(h => [h.querySelector('.handle').textContent,"
        " h.querySelector('.account-id').textContent])"
    )
    assert heads
    for handle, account in heads:
        assert handle.startswith("@reader")
        assert account.startswith(("x:1", "bluesky:did:plc:seed"))
