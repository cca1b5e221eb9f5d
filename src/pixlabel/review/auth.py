"""Reviewer tokens: ``NAME:SECRET`` (or a bare ``SECRET`` for the reviewer named "reviewer").

The name is what the audit history records as the actor; the secret is what clients send as
``Authorization: Bearer SECRET``.

>>> parse_tokens(["ana:s3cret-1", "b0b-secret"])
{'s3cret-1': 'ana', 'b0b-secret': 'reviewer'}
>>> is_loopback("127.0.0.1"), is_loopback("0.0.0.0")
(True, False)
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from collections.abc import Iterable, Mapping

from pixlabel.errors import InputError

DEFAULT_NAME = "reviewer"
_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")


def new_token() -> str:
    """A fresh random secret (144 bits, URL-safe)."""
    return secrets.token_urlsafe(18)


def parse_tokens(values: Iterable[str]) -> dict[str, str]:
    """``{secret: reviewer name}`` from ``--token`` values; refuses empty secrets and reused secrets."""
    out: dict[str, str] = {}
    for value in values:
        name, sep, secret = value.rpartition(":")
        if not sep:
            name = DEFAULT_NAME
        if not secret or not _NAME.fullmatch(name):
            raise InputError(f"--token {value!r}: expected NAME:SECRET or SECRET, with NAME made of letters, "
                             "digits and _.@- and a non-empty SECRET")
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


def is_loopback(host: str) -> bool:
    """Whether binding to ``host`` keeps the server reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything, so treat it as public
