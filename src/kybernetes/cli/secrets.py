"""``kyb secrets rotate`` and the API server's encryption/audit flags.

``kyb secrets rotate`` re-encrypts every Secret with the current first provider of the running
API server's ``--encryption-provider-config``: it reads each one and writes it back unchanged
(PUT with its resourceVersion, re-read and retried on a conflict). The server rewrites a value it
read with an old key (or unencrypted) even when nothing changed, so this is upstream's
``kubectl get secrets -A -o json | kubectl replace -f -``, done through the API (it works against
a running cluster, one object at a time). Key rotation, step by step:

1. add the new key as the *second* key of the provider; restart every API server;
2. move it to the *first* place; restart every API server (new writes use it);
3. ``kyb secrets rotate`` (every secret is now under the new key);
4. remove the old key; restart.

The flag helpers (``add_server_security_args`` ...) give ``kyb apiserver`` and ``kyb up``
``--encryption-provider-config`` and the ``--audit-*`` flags, and turn them into ServerConfig
values.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

ROTATE_CONCURRENCY = 8
ROTATE_ATTEMPTS = 5


# ----------------------------------------------------------------------------------------------
# server flags
def add_server_security_args(p: argparse.ArgumentParser) -> None:
    """``--anonymous-auth``, ``--token-auth-file``, ``--encryption-provider-config`` and the
    ``--audit-*`` flags (kyb apiserver, kyb up)."""
    p.add_argument("--anonymous-auth", action="store_true",
                   help="serve /version to requests without credentials, as system:anonymous "
                        "(/healthz, /livez and /readyz never need credentials; everything else does)")
    p.add_argument("--token-auth-file", default=None, metavar="FILE",
                   help="static bearer tokens, CSV lines token,user,uid[,\"group1,group2\"] (off by "
                        "default; read at start)")
    p.add_argument("--encryption-provider-config", default=None, metavar="FILE",
                   help="apiserver.config.k8s.io/v1 EncryptionConfiguration: which resources are "
                        "encrypted at rest, with which providers and keys")
    p.add_argument("--audit-policy-file", default=None, metavar="FILE",
                   help="audit.k8s.io/v1 Policy: which requests are audited at which level")
    p.add_argument("--audit-log-path", default=None, metavar="PATH",
                   help="write audit events (JSON lines) to this file; '-' is standard output")
    p.add_argument("--audit-log-maxsize", type=int, default=0, metavar="MB",
                   help="rotate the audit log before it grows past this many megabytes (0: 100)")
    p.add_argument("--audit-log-maxbackup", type=int, default=0, metavar="N",
                   help="rotated audit logs to keep (0: all)")
    p.add_argument("--audit-log-maxage", type=int, default=0, metavar="DAYS",
                   help="remove rotated audit logs older than this many days (0: never)")
    p.add_argument("--audit-log-mode", choices=("blocking", "batch"), default="blocking",
                   help="full queue: requests wait for the writer (blocking, default) or events "
                        "are dropped and counted (batch)")


def server_security_passthrough(args: argparse.Namespace) -> list[str]:
    """The same flags for a child ``kyb apiserver`` (``kyb up``), with absolute paths."""
    out: list[str] = ["--anonymous-auth"] if args.anonymous_auth else []
    for flag, value in (("--token-auth-file", args.token_auth_file),
                        ("--encryption-provider-config", args.encryption_provider_config),
                        ("--audit-policy-file", args.audit_policy_file)):
        if value:
            out += [flag, str(Path(value).absolute())]
    if args.audit_log_path:
        path = args.audit_log_path
        out += ["--audit-log-path", path if path == "-" else str(Path(path).absolute())]
    for flag, number in (("--audit-log-maxsize", args.audit_log_maxsize),
                         ("--audit-log-maxbackup", args.audit_log_maxbackup),
                         ("--audit-log-maxage", args.audit_log_maxage)):
        if number:
            out += [flag, str(number)]
    if args.audit_log_mode != "blocking":
        out += ["--audit-log-mode", args.audit_log_mode]
    return out


async def load_server_security(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """(encryption config, audit config, static tokens), each None when not asked for, from the
    flags; files are read off the loop. Invalid files raise ValueError subclasses with every
    problem listed."""
    encryption = audit = tokens = None
    if args.token_auth_file:
        from ..apiserver.tokenfile import load_token_file

        tokens = await asyncio.to_thread(load_token_file, args.token_auth_file)
    if args.encryption_provider_config:
        from ..apiserver.encryption import load_encryption_config

        encryption = await asyncio.to_thread(load_encryption_config, args.encryption_provider_config)
    if args.audit_policy_file or args.audit_log_path:
        from ..apiserver.audit import AuditConfig, LogOptions, load_policy

        policy = await asyncio.to_thread(load_policy, args.audit_policy_file) if args.audit_policy_file else None
        log = LogOptions(args.audit_log_path, max_size_mb=args.audit_log_maxsize,
                         max_backups=args.audit_log_maxbackup, max_age_days=args.audit_log_maxage,
                         mode=args.audit_log_mode) if args.audit_log_path else None
        audit = AuditConfig(policy=policy, log=log)
    return encryption, audit, tokens


# ----------------------------------------------------------------------------------------------
# kyb secrets
def add_parser(subparsers: Any, default_data_dir: str) -> argparse.ArgumentParser:
    sec = subparsers.add_parser("secrets", help="secrets at rest (rotate)",
                                description="Operations on secrets encrypted at rest.")
    sub = sec.add_subparsers(dest="secrets_command", metavar="SUBCOMMAND", required=True)
    rot = sub.add_parser(
        "rotate", help="re-encrypt every secret with the current first encryption key",
        description="Rewrite every Secret through the API so the server stores it with the first "
                    "provider of its --encryption-provider-config. Key rotation: add the new key "
                    "second, restart; move it first, restart; run this; remove the old key, restart.")
    rot.add_argument("--kubeconfig", default=None, help="kubeconfig of an administrator (default DATA_DIR/admin.kubeconfig)")
    rot.add_argument("--data-dir", default=default_data_dir, help=f"cluster data directory (default {default_data_dir})")
    rot.add_argument("--namespace", "-n", default=None, help="only this namespace (default: all)")
    rot.add_argument("--resource", action="append", default=None, metavar="RESOURCE[.GROUP]",
                     help="resource to rewrite, e.g. configmaps or deployments.apps (repeatable; default secrets)")
    rot.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return sec


def resolve_resource(text: str) -> Any:
    """``secrets`` / ``deployments.apps`` → the built-in client Resource (ValueError if unknown)."""
    from ..api.resources import BUILTIN
    from ..client.resources import Resource

    plural, _, group = text.partition(".")
    for info in BUILTIN:
        if info.plural == plural and info.group == group and (info.storage_version in (None, info.version)):
            return Resource.from_info(info)
    raise ValueError(f"unknown resource {text!r} (built-in resources only, as plural[.group])")


def run(args: argparse.Namespace) -> int:
    if args.secrets_command != "rotate":
        return 2
    kubeconfig = args.kubeconfig or str(Path(args.data_dir) / "admin.kubeconfig")
    try:
        resources = [resolve_resource(r) for r in (args.resource or ["secrets"])]
    except ValueError as e:
        print(f"kyb: error: {e}", file=sys.stderr)
        return 1
    from ..util.loop import use_fast_event_loop

    use_fast_event_loop()
    failures = asyncio.run(rotate(kubeconfig, resources, namespace=args.namespace, out=print))
    return 1 if failures else 0


async def rotate(kubeconfig: str | Any, resources: list[Any], *, namespace: str | None = None,
                 out: Any = print) -> int:
    """Rewrite every object of ``resources``; print one line each and a summary; return how many
    failed. ``kubeconfig`` is a path or an already open ``client.rest.ApiClient``."""
    from ..client.rest import ApiClient

    client = ApiClient.from_kubeconfig(kubeconfig) if isinstance(kubeconfig, (str, Path)) else kubeconfig
    owned = client is not kubeconfig
    try:
        failures = 0
        for res in resources:
            failures += await _rotate_resource(client, res, namespace, out)
        return failures
    finally:
        if owned:
            await client.close()


async def _rotate_resource(client: Any, res: Any, namespace: str | None, out: Any) -> int:
    from ..client.errors import ApiError

    try:
        items, _ = await client.list_all(res, namespace)
    except ApiError as e:
        out(f"kyb: error: listing {res.plural}: {e}")
        return 1
    counts = {"rewritten": 0, "unchanged": 0, "gone": 0, "failed": 0}
    sem = asyncio.Semaphore(ROTATE_CONCURRENCY)

    async def one(obj: dict[str, Any]) -> None:
        async with sem:
            outcome, detail = await rewrite(client, res, obj)
        counts[outcome] += 1
        md = obj.get("metadata") or {}
        where = f"{md.get('namespace')}/{md.get('name')}" if md.get("namespace") else str(md.get("name"))
        out(f"{res.plural}/{where}: {outcome}{': ' + detail if detail else ''}")

    async with asyncio.TaskGroup() as tg:
        for obj in items:
            tg.create_task(one(obj))
    out(f"kyb: {res.plural}: {len(items)} total, {counts['rewritten']} rewritten, {counts['unchanged']} already "
        f"current, {counts['gone']} deleted meanwhile, {counts['failed']} failed")
    return counts["failed"]


async def rewrite(client: Any, res: Any, obj: dict[str, Any]) -> tuple[str, str]:
    """PUT ``obj`` back unchanged; on a conflict read it again and retry. Returns (outcome,
    detail): rewritten (the server stored it anew), unchanged, gone or failed."""
    from ..client.errors import ApiError, Conflict, NotFound

    md = obj.get("metadata") or {}
    name, ns = str(md.get("name")), md.get("namespace")
    for _ in range(ROTATE_ATTEMPTS):
        body = {**obj, "apiVersion": res.api_version, "kind": res.kind}
        before = (body.get("metadata") or {}).get("resourceVersion")
        try:
            after = await client.update(res, body, ns)
        except Conflict:
            try:
                obj = await client.get(res, name, ns)
            except NotFound:
                return "gone", ""
            continue
        except NotFound:
            return "gone", ""
        except ApiError as e:
            return "failed", str(e)
        changed = (after.get("metadata") or {}).get("resourceVersion") != before
        return ("rewritten" if changed else "unchanged"), ""
    return "failed", f"still conflicting after {ROTATE_ATTEMPTS} attempts"
