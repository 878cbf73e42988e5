"""HTTP Basic authentication against a server's username/password (plain or ``{SHA}hex``)."""

from __future__ import annotations

import base64
import binascii


def credentials_ok(header: str | None, username: str, password: str) -> bool:
    """True when ``header`` is a Basic Authorization for these credentials; False for anything malformed."""
    # Imported here: hashlib and hmac load OpenSSL's libcrypto (~1 MB), needed only where credentials are.
    import hashlib
    import hmac

    if not header:
        return False
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return False
    given_user, sep, given_password = decoded.partition(":")
    if not sep:
        return False
    if password.startswith("{SHA}"):
        expected = password[5:].lower().encode()
        given = hashlib.sha1(given_password.encode("utf-8")).hexdigest().encode()  # noqa: S324 - Supervisor's format
    else:
        expected, given = password.encode("utf-8"), given_password.encode("utf-8")
    # Both comparisons always run, so timing does not say which part was wrong.
    user_ok = hmac.compare_digest(given_user.encode("utf-8"), username.encode("utf-8"))
    password_ok = hmac.compare_digest(given, expected)
    return user_ok and password_ok
