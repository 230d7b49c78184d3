"""Optional HTTP basic authentication for shared deployments.

A users file holds one ``user:password-hash`` line per person (hashes from
:func:`werkzeug.security.generate_password_hash`, written by ``radmap add-user``); lines
starting with ``#`` are comments. Plain-text passwords are refused. With a users file, every
request (pages, assets, callbacks, downloads) needs valid credentials; browsers ask for them
once per session. Basic authentication sends the password with every request, so shared
deployments should sit behind a TLS reverse proxy.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import threading
from pathlib import Path

from werkzeug.security import check_password_hash, generate_password_hash

from ..analysis.io import atomic_write_text
from ..analysis.validate import InputError

logger = logging.getLogger("radmap")

HASH_METHODS = ("scrypt:", "pbkdf2:")
REALM = "radmap"
MAX_REMEMBERED = 256
USER_CHARACTERS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-@")


def _check_user_name(user: str, where: str) -> None:
    if not user or not set(user) <= USER_CHARACTERS:
        raise InputError(
            f"{where}: user name {user!r} must be letters, digits or . _ - @ (no spaces or colons)"
        )


def read_users(path: str | Path) -> dict[str, str]:
    """User name -> password hash from a users file.

    Raises
    ------
    InputError
        The file is missing or empty, a line is not ``user:hash``, a user appears twice, or a
        password is not hashed.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"users file {path} not found: create it with `radmap add-user`") from None
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"users file {path} cannot be read: {err}") from None
    users: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        where = f"users file {path.name}, line {number}"
        user, colon, password_hash = line.partition(":")
        if not colon:
            raise InputError(f"{where}: expected `user:password-hash`")
        _check_user_name(user, where)
        if not password_hash.startswith(HASH_METHODS):
            raise InputError(
                f"{where}: the password of {user!r} is not hashed; "
                f"set it with `radmap add-user {path} {user}`"
            )
        if user in users:
            raise InputError(f"{where}: user {user!r} appears twice")
        users[user] = password_hash
    if not users:
        raise InputError(f"users file {path} lists no users: add one with `radmap add-user`")
    return users


def add_user(path: str | Path, user: str, password: str) -> bool:
    """Add ``user`` to the users file (or change their password); returns ``True`` if new.

    The file is rewritten atomically and readable by its owner only.
    """
    path = Path(path)
    _check_user_name(user, f"users file {path.name}")
    if len(password) < 8:
        raise InputError("the password must have at least 8 characters")
    users = read_users(path) if path.exists() and path.stat().st_size else {}
    is_new = user not in users
    users[user] = generate_password_hash(password)
    text = "".join(f"{name}:{password_hash}\n" for name, password_hash in users.items())
    atomic_write_text(path, text)
    os.chmod(path, 0o600)
    return is_new


class BasicAuth:
    """Check ``Authorization: Basic`` credentials against a users table.

    Hash checks are deliberately slow (scrypt, ~0.1 s); credentials that passed once are
    remembered by a keyed digest, so only the first request of a session pays for it. An
    unknown user name costs the same hash check (against a dummy hash), so the time of a
    refusal does not tell which user names exist.

    Parameters
    ----------
    users
        User name -> password hash.
    path
        The users file they were read from. Each worker then checks the file's identity
        (inode, size, modification time) on every request and reads it again when it
        changed, forgetting every remembered login: a changed password or a deleted user
        stops working at once, not at the next restart. A file that is gone or no longer
        valid lets nobody in until it is fixed.
    """

    def __init__(self, users: dict[str, str], *, path: str | Path | None = None) -> None:
        self.users = dict(users)
        self.path = None if path is None else Path(path)
        self._key = secrets.token_bytes(32)
        self._verified: set[bytes] = set()
        self._lock = threading.Lock()
        self._stamp = self._file_stamp()
        self._dummy_hash = generate_password_hash(secrets.token_hex(16))

    def _file_stamp(self) -> tuple | None:
        if self.path is None:
            return None
        try:
            status = self.path.stat()
        except OSError:
            return ("missing",)
        return (status.st_ino, status.st_size, status.st_mtime_ns)

    def _reload_if_changed(self) -> None:
        if self.path is None:
            return
        stamp = self._file_stamp()
        if stamp == self._stamp:
            return
        with self._lock:
            if stamp == self._stamp:
                return
            try:
                users = read_users(self.path)
            except InputError as error:
                logger.warning(
                    "users file changed and is not usable (%s): nobody can log in", error
                )
                users = {}
            self.users = users
            self._verified = set()
            self._stamp = stamp
            logger.info("users file %s read again: %d users", self.path.name, len(users))

    def _digest(self, user: str, password: str) -> bytes:
        message = user.encode("utf-8") + b"\0" + password.encode("utf-8")
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def check(self, user: str | None, password: str | None) -> bool:
        """Whether ``user`` / ``password`` are valid credentials."""
        self._reload_if_changed()
        users, verified = self.users, self._verified
        known = bool(user) and password is not None and user in users
        if not known:
            check_password_hash(self._dummy_hash, password or "")
            return False
        digest = self._digest(user, password)
        if digest in verified:
            return True
        if not check_password_hash(users[user], password):
            return False
        if len(verified) >= MAX_REMEMBERED:
            verified.clear()
        verified.add(digest)
        return True

    def install(self, server) -> None:
        """Require credentials on every request of the Flask ``server``."""
        from flask import Response, request

        @server.before_request
        def _require_login():
            credentials = request.authorization
            if (
                credentials is not None
                and credentials.type == "basic"
                and self.check(credentials.username, credentials.password)
            ):
                return None
            if credentials is not None:
                logger.warning(
                    "refused a login for %r from %s", credentials.username, request.remote_addr
                )
            return Response(
                "Log in to use this radmap explorer.\n",
                status=401,
                headers={"WWW-Authenticate": f'Basic realm="{REALM}", charset="UTF-8"'},
                mimetype="text/plain",
            )
