"""A fake arXiv API (`/api/query`) serving the recorded Atom responses.

`id_list` requests are answered from the recorded feeds: each known ID maps to the
recording that contains it; an `id_list` naming `abc` gets the recorded HTTP 400 error
feed (as arXiv does for a malformed ID); IDs with no recording get the recorded empty
feed. A batch of several IDs is answered with one feed holding every matching recorded
entry, built from the recorded `<entry>` elements (so the parser sees real entries).
Scripted failures (`fail_next`) answer 503 first; `gate` holds every answer until set.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from lxml import etree

from tests.fakes.http import FakeHttpServer, Reply, Request
from tests.fakes.paths import REAL_FIXTURES

QUERY_PATH = "/api/query"
ATOM = "http://www.w3.org/2005/Atom"

#: canonical ID -> the recording holding its entry (current API format).
RECORDED_IDS = {
    "1605.08386": "arxiv_api_2026_idlist_1605.08386.xml",
    "2104.12255": "arxiv_api_2026_idlist_2104.12255v1.xml",
    "astro-ph/0601001": "arxiv_api_2026_idlist_astro-ph_0601001_journal_ref.xml",
    "quant-ph/0201082": "arxiv_api_2026_idlist_quant-ph_0201082v1.xml",
    "1707.08567": "arxiv_api_2026_idlist_one_missing_one_found.xml",
}
#: exact id_list values answered with a whole recording (the quirky ones).
RECORDED_LISTS = {
    "0808.05394,1707.08567": "arxiv_api_2026_idlist_one_missing_one_found.xml",
    "0000.0000": "arxiv_api_2026_idlist_empty_0000.0000.xml",
    "2201.13455,2201.13452,2201.13453,2201.13454": (
        "arxiv_api_legacy2025_idlist_with_missing_ids.xml"
    ),
    "1201.56789": "arxiv_api_legacy2025_idlist_nonexistent.xml",
}
ERROR_400 = "arxiv_api_2026_error_400_incorrect_id_abc.xml"
EMPTY = "arxiv_api_2026_idlist_empty_0000.0000.xml"


def recording(name: str) -> bytes:
    return (REAL_FIXTURES / name).read_bytes()


def _entry_key(entry: etree._Element) -> str:
    text = entry.findtext(f"{{{ATOM}}}id") or ""
    short = text.split("arxiv.org/abs/")[-1]
    return short.rsplit("v", 1)[0] if "v" in short.split("/")[-1] else short


def combined_feed(ids: list[str]) -> bytes:
    """One feed with the recorded entries of `ids` (in the empty feed's envelope)."""
    root = etree.fromstring(recording(EMPTY))
    entries = []
    for arxiv_id in ids:
        name = RECORDED_IDS.get(arxiv_id)
        if name is None:
            continue
        for entry in etree.fromstring(recording(name)).iterfind(f"{{{ATOM}}}entry"):
            if _entry_key(entry) == arxiv_id:
                entries.append(entry)
    total = root.find("{http://a9.com/-/spec/opensearch/1.1/}totalResults")
    assert total is not None
    total.text = str(len(entries))
    for entry in entries:
        root.append(entry)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


@dataclass
class FakeArxiv(FakeHttpServer):
    """See the module doc. `request_log` holds (arrival time, id_list, start) per request."""

    fail_next: int = 0
    fail_status: int = 503
    gate: threading.Event = field(default_factory=threading.Event)
    request_log: list[tuple[float, str, int]] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0

    def __post_init__(self) -> None:
        super().__init__()
        self.gate.set()
        self._count_lock = threading.Lock()

    def handle(self, request: Request, reply: Reply) -> None:
        if request.path != QUERY_PATH:
            reply.send(404, b"not found", "text/plain")
            return
        with self._count_lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            self._answer(request, reply)
        finally:
            with self._count_lock:
                self.in_flight -= 1

    def _answer(self, request: Request, reply: Reply) -> None:
        id_list = request.param("id_list") or ""
        start = int(request.param("start") or 0)
        self.request_log.append((time.monotonic(), id_list, start))
        self.gate.wait(30)
        if self.fail_next > 0:
            self.fail_next -= 1
            reply.send(self.fail_status, b"Service Unavailable", "text/plain")
            return
        ids = [i for i in id_list.split(",") if i]
        if "abc" in ids:
            reply.send(400, recording(ERROR_400), "application/atom+xml")
        elif start > 0:
            # Past the recorded first page there is nothing (arXiv sends an empty page).
            reply.send(
                200,
                recording("arxiv_api_legacy2025_idlist_nonexistent.xml"),
                "application/atom+xml",
            )
        elif id_list in RECORDED_LISTS:
            reply.send(200, recording(RECORDED_LISTS[id_list]), "application/atom+xml")
        else:
            reply.send(200, combined_feed(ids), "application/atom+xml")

    @property
    def api_url(self) -> str:
        return f"{self.url}{QUERY_PATH}"
