"""Static bearer tokens from a CSV file (``--token-auth-file``, upstream's token file; off by default).

One token per line: ``token,user name,user uid[,"group1,group2,..."]`` (CSV: the group list is one
quoted field). Blank lines are skipped; a line with an empty token is skipped with a warning; a
token listed twice keeps its last line. A line with fewer than three columns makes the file
invalid: ``token file 'F' must have at least 3 columns (token, user name, user uid), found N``.

Every user also gets ``system:authenticated``, as for every other way in. The file is read once
at start; changing it needs a restart (upstream's behaviour too). Tokens are compared by lookup,
so one must be long and random: ``openssl rand -hex 32`` or ``python3 -c 'import secrets;
print(secrets.token_hex(32))'``.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

from .authn import UserInfo

log = logging.getLogger(__name__)
AUTHENTICATED = "system:authenticated"


class TokenFileError(ValueError):
    pass


def parse_token_file(text: str, path: str = "-") -> dict[str, UserInfo]:
    """The tokens of a token file's ``text`` (``path`` names it in messages)."""
    tokens: dict[str, UserInfo] = {}
    number = 0
    try:
        rows = list(csv.reader(text.splitlines()))
    except csv.Error as e:
        raise TokenFileError(f"token file '{path}': {e}") from None
    for row in rows:
        if not row:
            continue
        if len(row) < 3:
            raise TokenFileError(f"token file '{path}' must have at least 3 columns (token, user name, user uid), "
                                 f"found {len(row)}")
        number += 1
        token, name, uid = row[0], row[1], row[2]
        if not token:
            log.warning("empty token has been found in token file '%s', record number '%d'", path, number)
            continue
        if token in tokens:
            log.warning("duplicate token has been found in token file '%s', record number '%d'", path, number)
        groups = row[3].split(",") if len(row) >= 4 else []
        if AUTHENTICATED not in groups:
            groups.append(AUTHENTICATED)
        tokens[token] = UserInfo(name=name, uid=uid, groups=tuple(groups))
    return tokens


def load_token_file(path: str) -> dict[str, UserInfo]:
    """Read and parse ``path`` (blocking: call it off the event loop)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise TokenFileError(f"token file '{path}': {e}") from None
    return parse_token_file(text, path)
