"""Server DSNs: passwords hidden for messages and files, socket folders made absolute.

Imports nothing of the project and no database driver, so every engine and the config can
use it without loading another engine's client library.
"""

from __future__ import annotations

import os
import re


def hide_password(dsn: str) -> str:
    """A DSN fit for a message or a file: key=value, URL and Oracle's user/password@host forms."""
    dsn = re.sub(r"(password\s*=\s*)(\S+)", r"\1***", dsn)
    dsn = re.sub(r"(://[^:/@]+:)([^@]+)@", r"\1***@", dsn)
    return re.sub(r"^([^/@\s:=]+)/([^@\s]+)@", r"\1/***@", dsn)


_ENV_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?\}$", re.S)


def hide_password_in_ref(ref: str) -> str:
    """`${VAR:-fallback}` with the fallback DSN's password hidden (how `config show` prints it)."""
    m = _ENV_REF.match(ref)
    if not m or m.group(2) is None:
        return ref
    return f"${{{m.group(1)}:-{hide_password(m.group(2))}}}"


def socket_path(path: str, what: str) -> str:
    """A socket folder or file named in a DSN, absolute. A relative one is taken from the current
    directory (as run_dir and data.path are); libpq would read it as a host name. ValueError,
    naming `what` and the absolute path, when nothing is there."""
    full = os.path.abspath(path)
    if not os.path.exists(full):
        raise ValueError(f"{what} {path!r} is {full}, which does not exist (a relative socket path is taken "
                         f"from the current directory: run from the project folder, or give an absolute path)")
    return full


def is_relative_socket(host: str) -> bool:
    """libpq reads a host that starts with '/' as a socket folder; `.run/dbs/sock` is a path
    meant as one, which it would resolve as a host name."""
    return "/" in host and not host.startswith("/")
