"""Local stand-ins for X, Bluesky Jetstream and Mastodon, serving recorded payloads.

All listen on 127.0.0.1 with ephemeral ports; use them as context managers.
"""

from tests.fakes.jetstream import FakeJetstream
from tests.fakes.mastodon import FakeMastodon
from tests.fakes.paths import REAL_FIXTURES
from tests.fakes.x_api import Fail, FakeXApi, Serve

__all__ = ["REAL_FIXTURES", "Fail", "FakeJetstream", "FakeMastodon", "FakeXApi", "Serve"]
