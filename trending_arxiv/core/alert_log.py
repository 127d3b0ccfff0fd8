"""Alerts decided behind a watermark, from a paper's recent mentions: the same alerts
whatever order the mentions arrive in.

The counting state answers "how many now"; it cannot answer "how many distinct accounts
posted in the hour before 10:14 yesterday" once later posts have come (an account counts
at its latest post, and posts a day older than the newest sit in hour buckets). So the
alert rules read their own small history: each paper's `AlertLog` keeps the mentions of
the last day before the moments still to decide (post id, account, when it was added and
when it was withdrawn), and decides a moment only once the watermark has passed it, when
no mention of that moment or earlier can still come.

A mention's moment (`Mention.moment`) is when it became true in event time: a post's
own time, a credited repost's the later of the repost's and its subject's, a removal the
delete's. The watermark is the promise "every mention still to come has a moment at or
after this", which holds for a history whose raw partitions are each in event-time order
(a sorted archive, split in any way; live traffic, up to its lateness).

At each moment the log holds (in event-time order, each moment once), the rules see:
- `posts_1h`: the posts visible then (added at or before it, not yet withdrawn) added in
  the hour ending there, `(m - 1h, m]`; `posts_24h` likewise over the day;
- `accounts_1h`: the distinct accounts among the hour's visible posts;
- `velocity`: `counting.velocity` of those.
An alert id names the paper, the rule and the hour (`alerting.alert_id`), fired at the
first moment of the hour where its rule holds. A mention older than the moments already
decided (late: its partition broke event-time order) joins the history the later moments
see, and is counted (`late`), but its own past moment is not decided again.
"""

from __future__ import annotations

import struct
import sys
from array import array
from binascii import a2b_base64, b2a_base64
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from hashlib import blake2b

import orjson

from trending_arxiv.core.alerting import AlertRules, alert_id, hour_label
from trending_arxiv.core.counting import velocity
from trending_arxiv.core.models import Alert, Mention

HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US


def _column(values: Iterable[int] = ()) -> array[int]:
    """A column of 64-bit integers."""
    return array("q", values)


def micros(moment: datetime) -> int:
    """`moment` as whole microseconds since the epoch: exact to compare and subtract."""
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _moment_of(stamp: int) -> datetime:
    return datetime.fromtimestamp(stamp // 1_000_000, UTC).replace(microsecond=stamp % 1_000_000)


@dataclass(slots=True)
class AlertLog:
    """One paper's recent mentions and how far its alerts are decided.

    The posts are columns in the order they were added (by moment): the rules' windows
    at a moment are then two bisections, and the day before the decided moments is
    forgotten by cutting a prefix. Every batch touches a busy paper's log, so nothing
    here walks the whole log in Python.

    Post ids and accounts are kept as 64-bit hashes (`text_key`): the rules only compare
    them (redelivered posts, distinct accounts), and the columns are then machine
    integers, stored as their bytes (`pack`), ~3x smaller than the text and read back
    without building an object per post."""

    ids: array[int] = field(default_factory=_column)  # text_key of the post id
    accounts: array[int] = field(default_factory=_column)  # text_key of the account
    added: array[int] = field(default_factory=_column)  # µs, ascending
    removed: array[int] = field(default_factory=_column)  # µs; NOT_REMOVED: visible
    #: Posts withdrawn before their add came (rare): post key -> (account key, removed µs).
    withdrawn: dict[int, tuple[int, int]] = field(default_factory=dict)
    #: Moments still to decide (µs; unsorted, may repeat).
    pending_moments: list[int] = field(default_factory=list)
    #: Every moment before this is decided (µs); None before the first decision.
    decided: int | None = None
    #: Rules fired in the hour of the last decided moment (older hours never recur).
    fired_hour: int | None = None
    fired: list[str] = field(default_factory=list)
    #: Mentions that came after their moment was decided.
    late: int = 0
    #: How many posts in the columns are withdrawn (most papers: none).
    withdrawals: int = 0

    def add(self, mentions: Iterable[Mention]) -> None:
        """Note mentions of this paper (redelivered ones change nothing)."""
        where: dict[int, int] | None = None  # post key -> when added (µs)
        decided = self.decided
        for mention in mentions:
            stamp = micros(mention.moment)
            if decided is not None and stamp < decided - DAY_US:
                continue  # outside every window still to decide
            if where is None:
                where = dict(zip(self.ids, self.added, strict=True))
            post = text_key(mention.post_id)
            known = where.get(post)
            if mention.op == "add":
                if known is not None and known <= stamp:
                    continue  # redelivered
                removed = NOT_REMOVED
                if known is not None:  # the same post as of an earlier moment (rare)
                    removed = self._take(post, known)
                    self._unpend(known)
                elif post in self.withdrawn:
                    removed = self.withdrawn.pop(post)[1]  # its removal came first
                self._insert(stamp, post, text_key(mention.account), removed)
                where[post] = stamp
            elif known is None:
                gone = self.withdrawn.get(post)
                if gone is not None and gone[1] <= stamp:
                    continue  # redelivered
                if gone is not None:
                    self._unpend(gone[1])
                self.withdrawn[post] = (text_key(mention.account), stamp)
            else:
                at = self._position(post, known)
                before = self.removed[at]
                if before <= stamp:
                    continue  # redelivered
                if before == NOT_REMOVED:
                    self.withdrawals += 1
                else:
                    self._unpend(before)
                self.removed[at] = stamp
            if decided is not None and stamp < decided:
                self.late += 1
            else:
                self.pending_moments.append(stamp)

    def _unpend(self, stamp: int) -> None:
        """A fact replaced by an earlier one: its moment is no longer one to decide
        (whichever of the two came first, the same moments are decided)."""
        if stamp in self.pending_moments:
            self.pending_moments.remove(stamp)

    def _position(self, post: int, added: int) -> int:
        at = bisect_left(self.added, added)
        while self.ids[at] != post:
            at += 1
        return at

    def _insert(self, added: int, post: int, account: int, removed: int) -> None:
        at = len(self.added)
        if at and self.added[-1] > added:
            at = bisect_right(self.added, added)
        self.ids.insert(at, post)
        self.accounts.insert(at, account)
        self.added.insert(at, added)
        self.removed.insert(at, removed)
        if removed != NOT_REMOVED:
            self.withdrawals += 1

    def _take(self, post: int, added: int) -> int:
        """Remove a post from the columns; its removal time (NOT_REMOVED if visible)."""
        at = self._position(post, added)
        del self.ids[at], self.accounts[at], self.added[at]
        removed = self.removed.pop(at)
        if removed != NOT_REMOVED:
            self.withdrawals -= 1
        return removed

    def pending(self) -> int | None:
        """The earliest moment still to decide (µs), if any."""
        return min(self.pending_moments) if self.pending_moments else None

    def release(self, arxiv_id: str, watermark: int, rules: AlertRules) -> list[Alert]:
        """Decide every moment before `watermark` (µs) and return the alerts they fire.

        Moments at the watermark itself wait: a mention of that moment may still come.
        """
        due = sorted({stamp for stamp in self.pending_moments if stamp < watermark})
        if not due:
            return []
        self.pending_moments = [stamp for stamp in self.pending_moments if stamp >= watermark]
        alerts: list[Alert] = []
        least = min(rules.velocity_min_posts_1h, rules.min_accounts_1h)
        added = self.added
        for moment in due:
            hour = moment // HOUR_US
            if hour != self.fired_hour:
                self.fired_hour, self.fired = hour, []
            accounts_open = "accounts_1h" not in self.fired
            velocity_open = "velocity" not in self.fired
            if not (accounts_open or velocity_open):
                continue
            high = bisect_right(added, moment)
            hour_low = bisect_right(added, moment - HOUR_US, 0, high)
            posts_1h = high - hour_low - self._withdrawn_between(hour_low, high, moment)
            if posts_1h < least:
                continue
            accounts_1h = -1
            if accounts_open and posts_1h >= rules.min_accounts_1h:
                accounts_1h = self._accounts_between(hour_low, high, moment)
            day_low = bisect_right(added, moment - DAY_US, 0, hour_low)
            posts_24h = high - day_low - self._withdrawn_between(day_low, high, moment)
            speed = velocity({"1h": posts_1h, "24h": posts_24h})
            met = []
            if accounts_open and accounts_1h >= rules.min_accounts_1h:
                met.append("accounts_1h")
            fast = posts_1h >= rules.velocity_min_posts_1h and speed >= rules.velocity_ratio
            if velocity_open and fast:
                met.append("velocity")
            if not met:
                continue
            if accounts_1h < 0:
                accounts_1h = self._accounts_between(hour_low, high, moment)
            numbers = {
                "posts_1h": float(posts_1h),
                "accounts_1h": float(accounts_1h),
                "posts_24h": float(posts_24h),
                "velocity": speed,
            }
            for rule in met:
                self.fired.append(rule)
                alerts.append(_alert(arxiv_id, rule, _moment_of(moment), numbers, rules))
        self.decided = due[-1] + 1
        self._forget_through(self.decided - DAY_US)
        return alerts

    def _withdrawn_between(self, low: int, high: int, moment: int) -> int:
        """How many posts of columns [low, high) are withdrawn by `moment`."""
        if not self.withdrawals:
            return 0
        removed = self.removed
        return sum(1 for at in range(low, high) if removed[at] <= moment)

    def _accounts_between(self, low: int, high: int, moment: int) -> int:
        """The distinct accounts of the posts of columns [low, high) visible at `moment`."""
        if not self.withdrawals:
            return len(set(self.accounts[low:high]))
        removed, accounts = self.removed, self.accounts
        return len({accounts[at] for at in range(low, high) if removed[at] > moment})

    def _forget_through(self, limit: int) -> None:
        """Drop the posts no window still to decide can see: added at or before `limit`
        (and withdrawals whose add never came, by then)."""
        cut = bisect_right(self.added, limit)
        if cut:
            if self.withdrawals:
                self.withdrawals -= sum(1 for r in self.removed[:cut] if r != NOT_REMOVED)
            del self.ids[:cut], self.accounts[:cut], self.added[:cut], self.removed[:cut]
        for post in [p for p, (_, r) in self.withdrawn.items() if r <= limit]:
            del self.withdrawn[post]

    def pack(self) -> bytes:
        """The stored form (`unpack` reverses it): a fixed header (`_HEADER`: the
        decided moment first, which `decided_of` reads alone), then the columns' machine
        integers, little-endian. The changelog keeps it as text (`stored_text`)."""
        fired = sum(bit for rule, bit in _RULE_BITS.items() if rule in self.fired)
        withdrawn = _column(v for post, pair in self.withdrawn.items() for v in (post, *pair))
        pending = _column(self.pending_moments)
        head = _HEADER.pack(
            _NONE if self.decided is None else self.decided,
            _NONE if self.fired_hour is None else self.fired_hour,
            self.late, fired, len(self.ids), len(pending), len(self.withdrawn),
            self.withdrawals,
        )  # fmt: skip
        parts = [head]
        for column in (self.ids, self.accounts, self.added, self.removed, pending, withdrawn):
            parts.append(_little(column))
        return b"".join(parts)

    @classmethod
    def unpack(cls, stored: bytes | str | None) -> AlertLog:
        """A log from `pack`'s bytes, or from the text the changelog recovers:
        `stored_text`'s, or an earlier version's JSON."""
        if stored is None:
            return cls()
        if isinstance(stored, str):
            if stored.startswith("["):
                return _unpack_json(stored)
            stored = a2b_base64(stored)
        decided, fired_hour, late, fired, posts, pending, withdrawn, withdrawals = (
            _HEADER.unpack_from(stored)
        )
        at = _HEADER.size
        columns = []
        for count in (posts, posts, posts, posts, pending, 3 * withdrawn):
            columns.append(_from_little(stored[at : at + 8 * count]))
            at += 8 * count
        ids, accounts, added, removed, moments, triples = columns
        return cls(
            ids, accounts, added, removed,
            {triples[i]: (triples[i + 1], triples[i + 2]) for i in range(0, len(triples), 3)},
            moments.tolist(),
            None if decided == _NONE else decided,
            None if fired_hour == _NONE else fired_hour,
            [rule for rule, bit in _RULE_BITS.items() if fired & bit],
            late, withdrawals,
        )  # fmt: skip


def stored_text(packed: bytes) -> str:
    """A packed log as the changelog's text (base64: Faust's recovery reads a JSON
    string back); `AlertLog.unpack` reads it."""
    return b2a_base64(packed, newline=False).decode()


#: A removal time later than every moment: the post is visible.
NOT_REMOVED = 2**63 - 1
_NONE = -(2**63)  # decided / fired_hour not set
#: decided, fired_hour, late, fired rules (bits), posts, pending moments, withdrawn
#: posts whose add has not come, withdrawn posts in the columns.
_HEADER = struct.Struct("<qqqIIIII")
_RULE_BITS = {"accounts_1h": 1, "velocity": 2}
_BIG_ENDIAN = sys.byteorder == "big"


def text_key(text: str) -> int:
    """A stable 64-bit key of `text` (the same in every process, unlike `hash`)."""
    return int.from_bytes(blake2b(text.encode(), digest_size=8).digest(), "little", signed=True)


def _little(column: array[int]) -> bytes:
    if _BIG_ENDIAN:  # pragma: no cover - the machines here are little-endian
        column = array("q", column)
        column.byteswap()
    return column.tobytes()


def _from_little(data: bytes) -> array[int]:
    column = array("q")
    column.frombytes(data)
    if _BIG_ENDIAN:  # pragma: no cover
        column.byteswap()
    return column


def _unpack_json(stored: str) -> AlertLog:
    """A log stored by an earlier version (JSON, text ids), read into today's form."""
    decided, fired_hour, fired, late, pending, ids, accounts, added, removed, withdrawn = (
        orjson.loads(stored)
    )
    kept = [NOT_REMOVED if r is None else r for r in removed]
    return AlertLog(
        _column(text_key(p) for p in ids), _column(text_key(a) for a in accounts),
        _column(added), _column(kept),
        {text_key(p): (text_key(a), r) for p, (a, r) in withdrawn.items()},
        pending, decided, fired_hour, fired, late,
        sum(1 for r in kept if r != NOT_REMOVED),
    )  # fmt: skip


def _alert(
    arxiv_id: str, rule: str, moment: datetime, numbers: dict[str, float], rules: AlertRules
) -> Alert:
    posts_1h, accounts_1h = int(numbers["posts_1h"]), int(numbers["accounts_1h"])
    if rule == "accounts_1h":
        reason = (
            f"{accounts_1h} distinct accounts posted about {arxiv_id} within an hour "
            f"(threshold {rules.min_accounts_1h})"
        )
    else:
        reason = (
            f"{arxiv_id} got {posts_1h} posts in the last hour, {numbers['velocity']:.1f}x "
            f"its hourly rate over the previous day (threshold {rules.velocity_ratio:g}x)"
        )
    return Alert(
        alert_id=alert_id(arxiv_id, rule, moment),
        arxiv_id=arxiv_id,
        rule=rule,
        reason=reason,
        triggered_at=moment,
        numbers=dict(numbers),
    )


def decided_of(stored: bytes | str) -> int | None:
    """A stored log's decided moment (its first field) without reading the rest."""
    if isinstance(stored, str):  # as recovered from the changelog
        if stored.startswith("["):  # an earlier version's JSON
            head = stored[1 : stored.index(",")]
            return None if head == "null" else int(head)
        stored = a2b_base64(stored[:12])
    (decided,) = struct.unpack_from("<q", stored)
    return None if decided == _NONE else int(decided)


__all__ = [
    "DAY_US", "NOT_REMOVED", "AlertLog", "decided_of", "hour_label", "micros", "stored_text",
    "text_key",
]  # fmt: skip
