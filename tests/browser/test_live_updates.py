"""The page updates itself (server-sent events from /api/stream) in headless Chromium.

The real pipeline (worker and sink processes) counts the seed sample; the page is
opened on the all-time ranking; then more posts linking a paper at the bottom are
replayed through Kafka while the page stays open, and the page moves that paper up,
with its new count and a "new" marker, without reloading.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from producers.replay import replay
from producers.settings import ProducerSettings
from tests.browser.chrome import chromium
from tests.integration.pipeline import settings_for, start_pipeline
from tests.integration.up_run import wait_for, x_posts
from trending_arxiv.core.simulate import read_lines, simulate
from trending_arxiv.demo import bundled_sample_path
from trending_arxiv.web.server import BackgroundServer

pytestmark = [pytest.mark.browser, pytest.mark.integration]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
RISER = "1511.06909"  # one post in the seed: last but one in the all-time ranking
NEW_POSTS = 25  # takes it past 1601.04589 (20 posts) to second place


def test_page_moves_a_paper_up_as_its_posts_are_counted(
    tmp_path: Path, namespace: str, stack_endpoints: tuple[str, str]
) -> None:
    kafka, es_url = stack_endpoints
    settings = settings_for(namespace, kafka, es_url)
    producer = ProducerSettings(kafka_bootstrap_servers=kafka, namespace=namespace)
    seed = bundled_sample_path()
    extra = tmp_path / "more.jsonl"
    extra.write_text("".join(json.dumps(p) + "\n" for p in x_posts(RISER, NEW_POSTS)))
    before = simulate(read_lines([seed])).posts_by_paper
    after = simulate(read_lines([seed, extra])).posts_by_paper
    assert after[RISER] == before[RISER] + NEW_POSTS

    processes = start_pipeline(namespace, kafka, es_url, tmp_path)
    try:
        with BackgroundServer(settings) as server, chromium() as driver:
            replay([seed], producer, progress=False)
            wait_for("the seed counted", lambda: _ranking(server.url) == before)
            driver.get(f"{server.url}/?window=all&sort=posts")
            wait = WebDriverWait(driver, 30)
            wait.until(lambda d: d.execute_script(
                "return document.getElementById('papers').dataset.live === 'open'"
                " && document.querySelectorAll('#papers > li.paper').length === 20"
            ))  # fmt: skip
            ids = _card_ids(driver)
            assert ids.index(RISER) > 2
            top = driver.find_element(By.CSS_SELECTOR, "#papers > li.paper")
            top_y = top.location["y"]
            driver.execute_script("window.__sameDocument = true")

            replay([extra], producer, progress=False)
            WebDriverWait(driver, 120).until(lambda d: _card_ids(d)[:2] == ["1602.02410", RISER])
            card = driver.find_element(By.CSS_SELECTOR, f'li.paper[data-arxiv-id="{RISER}"]')
            WebDriverWait(driver, 60).until(
                lambda _: (
                    card.find_element(By.CSS_SELECTOR, ".count").text
                    == f"Captured tweets and retweets: {after[RISER]}"
                )
            )
            marker = card.find_element(By.CSS_SELECTOR, ".live-new")
            assert marker.text.startswith("+") and marker.text.endswith(" new")
            # Same page (no reload), same cards, the top one where it was.
            assert driver.execute_script("return window.__sameDocument === true")
            assert sorted(_card_ids(driver)) == sorted(ids)
            assert top.location["y"] == top_y
            ARTIFACTS.mkdir(exist_ok=True)
            driver.save_screenshot(str(ARTIFACTS / "page-live.png"))
            counts = driver.execute_script(
                "return [...document.querySelectorAll('#papers > li.paper')]"
                ".map(li => [li.dataset.arxivId, li.querySelector('.count').textContent])"
            )
            assert {i: int(t.rsplit(" ", 1)[1]) for i, t in counts} == after
    finally:
        processes.stop()


def _ranking(url: str) -> dict[str, int]:
    body = httpx.get(f"{url}/api/trending", params={"window": "all", "limit": 100}).json()
    return {p["arxiv_id"]: p["posts"] for p in body.get("papers", []) if p.get("title")}


def _card_ids(driver: object) -> list[str]:
    ids: list[str] = driver.execute_script(  # type: ignore[attr-defined]
        "return [...document.querySelectorAll('#papers > li.paper')].map(li => li.dataset.arxivId)"
    )
    return ids
