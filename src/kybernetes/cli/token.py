"""``kyb token create|list|delete``: bootstrap tokens for joining nodes (kubeadm's ``token``).

    kyb token create [--ttl 24h] [--description TEXT] [--groups G,...]   prints the token
    kyb token list                                                       TOKEN TTL EXPIRES USAGES DESCRIPTION EXTRA GROUPS
    kyb token delete ID|TOKEN ...

They talk to the API server with an administrator's kubeconfig (``--kubeconfig``, default
``DATA_DIR/admin.kubeconfig``). See apiserver/bootstraptoken.py for what a token is.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from pathlib import Path
from typing import Any

from ..apiserver import bootstraptoken as bt
from ..util.duration import parse_seconds


def add_parser(subparsers: Any, default_data_dir: str) -> argparse.ArgumentParser:
    tok = subparsers.add_parser("token", help="bootstrap tokens for joining nodes (create, list, delete)",
                                description="Manage bootstrap tokens: bearer tokens a new node uses to "
                                            "authenticate as system:bootstrap:<id> while it joins.")
    sub = tok.add_subparsers(dest="token_command", metavar="SUBCOMMAND", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--kubeconfig", default=None, help="kubeconfig of an administrator (default DATA_DIR/admin.kubeconfig)")
        p.add_argument("--data-dir", default=default_data_dir, help=f"cluster data directory (default {default_data_dir})")

    create = sub.add_parser("create", help="create a token and print it",
                            description="Create a bootstrap token (a Secret in kube-system) and print it.")
    create.add_argument("token", nargs="?", default=None, help="the token to create ([a-z0-9]{6}.[a-z0-9]{16}; default: random)")
    create.add_argument("--ttl", default="24h", help="lifetime, a Go duration such as 24h or 30m; 0 = never expires (default 24h)")
    create.add_argument("--description", default="", help="human-readable description")
    create.add_argument("--groups", default=bt.DEFAULT_GROUP,
                        help=f"comma-separated extra groups, each system:bootstrappers:... (default {bt.DEFAULT_GROUP})")
    common(create)
    lst = sub.add_parser("list", help="list the tokens", description="List the bootstrap tokens.")
    common(lst)
    delete = sub.add_parser("delete", help="delete tokens", description="Delete bootstrap tokens by id or whole token.")
    delete.add_argument("tokens", nargs="+", metavar="ID|TOKEN", help="token ids (abcdef) or whole tokens")
    common(delete)
    return tok


def _client(args: argparse.Namespace) -> Any:
    from ..client.rest import ApiClient

    kubeconfig = args.kubeconfig or str(Path(args.data_dir) / "admin.kubeconfig")
    if not Path(kubeconfig).exists():
        raise FileNotFoundError(f"no kubeconfig at {kubeconfig} (pass --kubeconfig or --data-dir)")
    return ApiClient.from_kubeconfig(kubeconfig, timeout=30.0)


def list_rows(secrets: list[dict[str, Any]], now: dt.datetime) -> list[list[str]]:
    """The ``kyb token list`` table (pure): one row per bootstrap-token Secret."""
    rows = []
    for s in sorted(secrets, key=lambda x: x["metadata"]["name"]):
        if s.get("type") != bt.SECRET_TYPE:
            continue
        d = bt.decoded_data(s)
        if not d.get("token-id"):
            continue
        exp = bt.expiration_of(d)
        ttl = "<forever>" if exp is None else ("<invalid>" if exp <= now else _human(exp - now))
        usages = ",".join(k.removeprefix("usage-bootstrap-") for k, v in sorted(d.items())
                          if k.startswith("usage-bootstrap-") and v == "true")
        rows.append([f"{d['token-id']}.<secret>", ttl, d.get("expiration", "<never>"), usages or "<none>",
                     d.get("description", "<none>") or "<none>", d.get("auth-extra-groups", "")])
    return rows


def _human(delta: dt.timedelta) -> str:
    s = int(delta.total_seconds())
    return f"{s // 3600}h" if s >= 3600 else f"{s // 60}m" if s >= 60 else f"{s}s"


async def _run(args: argparse.Namespace) -> int:
    from ..client.errors import AlreadyExists, NotFound
    from ..client.resources import SECRETS

    client = _client(args)
    try:
        if args.token_command == "create":
            token = args.token or bt.new_token()
            ttl = parse_seconds(args.ttl)
            if ttl is None or ttl < 0:
                raise ValueError(f"--ttl {args.ttl!r} is not a duration such as 24h, 30m or 0")
            groups = tuple(g.strip() for g in args.groups.split(",") if g.strip())
            secret = bt.token_secret(token, ttl_seconds=ttl or None, description=args.description, groups=groups)
            try:
                await client.create(SECRETS, secret, bt.NAMESPACE)
            except AlreadyExists:
                raise ValueError(f"a token with id {token.split('.')[0]} already exists") from None
            print(token)
            return 0
        if args.token_command == "list":
            items, _ = await client.list_all(SECRETS, bt.NAMESPACE, field_selector=f"type={bt.SECRET_TYPE}")
            rows = list_rows(items, dt.datetime.now(dt.UTC))
            header = ["TOKEN", "TTL", "EXPIRES", "USAGES", "DESCRIPTION", "EXTRA GROUPS"]
            widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
            for r in [header, *rows]:
                print("   ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
            return 0
        failed = 0
        for t in args.tokens:
            tid = t.split(".")[0]
            if not bt.TOKEN_RE.match(f"{tid}.{'0' * 16}"):
                print(f"kyb: error: {t!r} is not a token id ([a-z0-9]{{6}}) or token", file=sys.stderr)
                failed += 1
                continue
            try:
                await client.delete(SECRETS, bt.secret_name(tid), bt.NAMESPACE)
                print(f"bootstrap token {tid!r} deleted")
            except NotFound:
                print(f"kyb: error: bootstrap token {tid!r} not found", file=sys.stderr)
                failed += 1
        return 1 if failed else 0
    finally:
        await client.close()


def run(args: argparse.Namespace) -> int:
    from ..client.errors import ClientError

    try:
        return asyncio.run(_run(args))
    except (ValueError, OSError, ClientError) as e:  # one line, never a traceback
        print(f"kyb: error: {e or type(e).__name__}", file=sys.stderr)
        return 1
