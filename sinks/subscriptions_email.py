"""E-mail delivery of subscription alerts and digests: stdlib `email` + `smtplib`.

A message has a plain-text and an HTML part listing each paper's title, counts and
links. The subscriber's address is a `SecretStr`: it goes into the envelope and the
`To:` header and nowhere else. Errors name the subscription, never the address
(smtplib's exceptions quote recipients, so their text is not passed on).
"""

from __future__ import annotations

import html
import smtplib
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

from pydantic import SecretStr

from sinks.alert_targets import PermanentDeliveryError, RetryableDeliveryError
from trending_arxiv.core.models import Alert, to_utc_iso


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    sender: str
    username: str | None = None
    password: SecretStr | None = None
    starttls: bool = False
    timeout: float = 10.0


def _paper_lines(papers: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[str]]:
    text, rich = [], []
    for rank, paper in enumerate(papers, start=1):
        arxiv_id = str(paper["arxiv_id"])
        title = str(paper.get("title") or f"arXiv:{arxiv_id}")
        url = paper.get("abs_url") or f"https://arxiv.org/abs/{arxiv_id}"
        counts = f"{paper.get('accounts', 0)} accounts, {paper.get('posts', 0)} posts"
        text.append(f"{rank}. {title} (arXiv:{arxiv_id})\n   {counts}\n   {url}")
        rich.append(
            f'<li><a href="{html.escape(url)}">{html.escape(title)}</a> '
            f"(arXiv:{html.escape(arxiv_id)})<br>{html.escape(counts)}</li>"
        )
    return text, rich


def compose(
    alert: Alert, papers: Sequence[Mapping[str, Any]], sender: str, to: SecretStr
) -> EmailMessage:
    """The message of an alert (one paper) or a digest (`alert.rule == "digest"`)."""
    subject_name = alert.reason.split(":", 1)[0]
    if alert.rule == "digest":
        subject = f"Trending arXiv digest: {subject_name} ({len(papers)} papers)"
        intro = alert.reason.split(": ", 1)[-1]
    else:
        first = papers[0] if papers else {"arxiv_id": alert.arxiv_id}
        subject = f"Trending arXiv: {first.get('title') or alert.arxiv_id}"
        intro = alert.reason.split(": ", 1)[-1]
    text_lines, html_items = _paper_lines(papers)
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = to.get_secret_value()
    message["Message-ID"] = make_msgid(domain="trending-arxiv.local")
    message["X-Trending-Arxiv-Id"] = alert.alert_id
    when = to_utc_iso(alert.triggered_at)
    message.set_content(
        f"{intro}\n\n" + "\n\n".join(text_lines) + f"\n\n(as of {when}, stream time)\n"
    )
    message.add_alternative(
        f"<html><body><p>{html.escape(intro)}</p><ol>{''.join(html_items)}</ol>"
        f"<p><small>as of {html.escape(when)}, stream time</small></p></body></html>",
        subtype="html",
    )
    return message


@dataclass
class EmailTarget:
    """Sends one message per alert or digest to one address through an SMTP server."""

    name: str
    to: SecretStr
    server: SmtpServer

    def deliver(self, alert: Alert, paper: dict[str, Any] | None) -> None:
        papers = (paper or {}).get("digest")
        if papers is None:
            papers = [{**(paper or {}), "arxiv_id": alert.arxiv_id,
                       "accounts": int(alert.numbers.get("accounts_1h", 0)),
                       "posts": int(alert.numbers.get("posts_1h", 0))}]  # fmt: skip
        message = compose(alert, papers, self.server.sender, self.to)
        try:
            with smtplib.SMTP(
                self.server.host, self.server.port, timeout=self.server.timeout
            ) as smtp:
                if self.server.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.server.username and self.server.password is not None:
                    smtp.login(self.server.username, self.server.password.get_secret_value())
                smtp.send_message(message)
        except smtplib.SMTPResponseException as error:
            kind = RetryableDeliveryError if error.smtp_code < 500 else PermanentDeliveryError
            raise kind(f"subscription {self.name!r}: SMTP answered {error.smtp_code}") from None
        except smtplib.SMTPRecipientsRefused:
            raise PermanentDeliveryError(
                f"subscription {self.name!r}: the SMTP server refused the recipient"
            ) from None
        except (smtplib.SMTPException, OSError) as error:  # OSError: refused, timeout
            raise RetryableDeliveryError(
                f"subscription {self.name!r}: {type(error).__name__} while sending mail"
            ) from None
