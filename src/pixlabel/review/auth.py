"""Reviewer tokens: ``NAME:SECRET`` (or a bare ``SECRET`` for the reviewer named "reviewer").

The name is what the audit history records as the actor; the secret is what clients send as
``Authorization: Bearer SECRET``. The review page itself never sees a secret: the server renders a *page
token* into it (an HMAC of the reviewer's name under a key made at start, so it dies with the process) and
the page's script sends that as its Bearer token; the secret lives in an HttpOnly cookie.

>>> parse_tokens(["ana:s3cret-1-long-enough", "b0b-secret-long-enough"])
{'s3cret-1-long-enough': 'ana', 'b0b-secret-long-enough': 'reviewer'}
>>> is_loopback("127.0.0.1"), is_loopback("0.0.0.0")
(True, False)
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Mapping

from pixlabel.errors import InputError
from pixlabel.webguard import FailedAuthLimiter, check_secret, is_loopback

__all__ = ["DEFAULT_NAME", "Credentials", "TooManyAttempts", "is_loopback", "new_token", "parse_tokens",
           "reviewer_for"]

DEFAULT_NAME = "reviewer"
_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")


def new_token() -> str:
    """A fresh random secret (144 bits, URL-safe)."""
    return secrets.token_urlsafe(18)


def parse_tokens(values: Iterable[str]) -> dict[str, str]:
    """``{secret: reviewer name}`` from ``--token`` values; refuses short secrets (< 16 characters) and
    reused secrets."""
    out: dict[str, str] = {}
    for value in values:
        name, sep, secret = value.rpartition(":")
        if not sep:
            name = DEFAULT_NAME
        if not secret or not _NAME.fullmatch(name):
            raise InputError(f"--token {value!r}: expected NAME:SECRET or SECRET, with NAME made of letters, "
                             "digits and _.@- and a non-empty SECRET")
        check_secret(secret)
        if secret in out:
            raise InputError(f"--token {value!r}: this secret is already given to {out[secret]!r}")
        out[secret] = name
    return out


def reviewer_for(secret: str | None, tokens: Mapping[str, str]) -> str | None:
    """The reviewer a secret belongs to, or None; compares in constant time."""
    if not secret:
        return None
    found = None
    for known, name in tokens.items():
        if secrets.compare_digest(secret.encode(), known.encode()):
            found = name
    return found


class TooManyAttempts(Exception):
    """This client address sent too many wrong tokens lately; ``retry_after`` seconds to wait."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"too many wrong tokens from this address; retry in {retry_after:.0f} s")
        self.retry_after = retry_after


class Credentials:
    """Who a credential belongs to: a reviewer secret or a page token; wrong ones are counted per client
    address and, past the limit, refused with :class:`TooManyAttempts` before they are even compared."""

    def __init__(self, tokens: Mapping[str, str], *, limiter: FailedAuthLimiter | None = None) -> None:
        self.tokens = dict(tokens)
        self._key = secrets.token_bytes(32)
        self.pages = {self.page_token(name): name for name in set(self.tokens.values())}
        self.limiter = limiter or FailedAuthLimiter()

    def page_token(self, name: str) -> str:
        return hmac.new(self._key, name.encode(), hashlib.sha256).hexdigest()

    def identify(self, presented: str | None, client: str, *, pages: bool = True) -> str | None:
        """The reviewer behind ``presented`` (None when nothing was presented); a wrong credential counts
        against ``client`` and returns None; raises :class:`TooManyAttempts` while ``client`` is blocked."""
        if not presented:
            return None
        wait = self.limiter.retry_after(client)
        if wait:
            raise TooManyAttempts(wait)
        name = reviewer_for(presented, self.tokens)
        if name is None and pages:
            name = reviewer_for(presented, self.pages)
        if name is None:
            self.limiter.failed(client)
        return name
