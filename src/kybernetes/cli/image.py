"""``kyb image``: manage the node's image store (import, ls, rm, pull, push, build).

The store is the kubelet's: ``<data-dir>/kubelet/images`` with the same ``--data-dir`` as
``kyb up``, so an image built or imported here runs at once in a pod with
``imagePullPolicy: Never`` (or ``IfNotPresent``).
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
from pathlib import Path
from typing import Any



def image_root(data_dir: str | Path) -> Path:
    """Where ``kyb up --data-dir D`` keeps its node's images."""
    return Path(data_dir) / "kubelet" / "images"


def human_size(n: int) -> str:
    """Decimal units with 4 significant digits, as ``crictl images`` prints them (``1.034MB``)."""
    units = ["B", "kB", "MB", "GB", "TB", "PB"]
    size = float(n)
    i = 0
    while size >= 1000 and i < len(units) - 1:
        size /= 1000
        i += 1
    return f"{size:.4g}{units[i]}"


def _common(p: argparse.ArgumentParser) -> None:
    from .main import DEFAULT_DATA_DIR  # the same default as `kyb up`

    p.add_argument("--data-dir", default=DEFAULT_DATA_DIR, metavar="D",
                   help=f"cluster data directory, as given to `kyb up` (default {DEFAULT_DATA_DIR}); "
                        "the image store is D/kubelet/images")


def _registry_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--insecure", action="store_true",
                   help="talk plain HTTP to this registry (loopback registries always are)")
    p.add_argument("--creds", metavar="USER:PASSWORD", default=None,
                   help="credentials for the registry (basic or token auth)")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``image`` and its subcommands to ``kyb``'s subparsers."""
    img = subparsers.add_parser(
        "image", help="manage the node's image store (import, ls, rm, pull, push, build)",
        description="Manage the image store of the local node (DATA_DIR/kubelet/images).")
    sub = img.add_subparsers(dest="image_command", metavar="SUBCOMMAND", required=True)

    p = sub.add_parser("import", help="import an OCI image archive (tar)",
                       description="Import an OCI image layout archive (oci-layout, index.json, "
                                   "blobs/), e.g. from `skopeo copy ... oci-archive:FILE`, or a "
                                   "`docker save` archive. Images are named from the archive's "
                                   "annotations or RepoTags.")
    p.add_argument("file", metavar="FILE", help="the archive (plain or compressed tar)")
    p.add_argument("--name", default=None,
                   help="name for images the archive does not name fully (e.g. only a tag)")
    _common(p)

    p = sub.add_parser("ls", help="list images", description="List the images in the store, "
                       "one line per tag, like `crictl images`.")
    p.add_argument("-q", "--quiet", action="store_true", help="print image ids only")
    _common(p)

    p = sub.add_parser("rm", help="remove images",
                       description="Remove images by name (untags; the image goes when its last "
                                   "tag does) or by id. Blobs and layers no image uses are deleted.")
    p.add_argument("names", nargs="+", metavar="NAME", help="image name, name@digest or id")
    _common(p)

    p = sub.add_parser("pull", help="pull an image from its registry",
                       description="Pull an image (resolving the tag again) into the store.")
    p.add_argument("name", metavar="NAME", help="image reference, e.g. 127.0.0.1:5000/busybox:1")
    _registry_args(p)
    _common(p)

    p = sub.add_parser("push", help="push an image to its registry",
                       description="Push a stored image to the registry its name points at "
                                   "(e.g. 127.0.0.1:5000/busybox:1).")
    p.add_argument("name", metavar="NAME", help="image reference in the store")
    _registry_args(p)
    _common(p)

    p = sub.add_parser("build", help="turn a root filesystem directory into an image",
                       description="Build a one-layer OCI image from the directory DIR (its "
                                   "contents become the container's /) and store it as NAME.")
    p.add_argument("dir", metavar="DIR", help="root filesystem directory")
    p.add_argument("-t", "--tag", required=True, metavar="NAME", help="image name, e.g. busybox-httpd:1")
    p.add_argument("--entrypoint", default=None, metavar="PATH", help="the image ENTRYPOINT (one path)")
    p.add_argument("--cmd", default=None, metavar="'ARGS'",
                   help="the image CMD, split like a shell would: --cmd 'httpd -f -p 8080'")
    p.add_argument("--env", action="append", default=[], metavar="K=V",
                   help="an environment variable (repeatable); PATH defaults to the usual one")
    p.add_argument("--workdir", default=None, metavar="DIR", help="working directory (absolute)")
    p.add_argument("--user", default=None, metavar="U", help="user (name or uid[:gid])")
    _common(p)
    return img


def _auths(name: str, creds: str | None) -> list[Any]:
    from kybernetes.kubelet.images import RegistryAuth, parse_reference

    if not creds:
        return []
    user, sep, password = creds.partition(":")
    if not sep:
        raise ValueError("--creds must be USER:PASSWORD")
    return [RegistryAuth(registry=parse_reference(name).domain, username=user, password=password)]


def _insecure(name: str, insecure: bool) -> set[str] | None:
    from kybernetes.kubelet.images import parse_reference

    return {parse_reference(name).domain} if insecure else None


def _ls(store: Any, quiet: bool) -> None:
    rows: list[tuple[str, str, str, str]] = []
    for im in store.list():
        short = im.id.removeprefix("sha256:")[:13]
        if quiet:
            print(im.id)
            continue
        names = [(t.rsplit(":", 1)[0], t.rsplit(":", 1)[1]) for t in im.repo_tags]
        if not names:
            repos = sorted({d.split("@", 1)[0] for d in im.repo_digests}) or ["<none>"]
            names = [(r, "<none>") for r in repos]
        for repo, tag in names:
            rows.append((repo, tag, short, human_size(im.size)))
    if quiet:
        return
    header = ("IMAGE", "TAG", "IMAGE ID", "SIZE")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    for r in [header, *rows]:
        print("   ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip())


def _run(args: argparse.Namespace) -> int:
    from kybernetes.kubelet.images import ImageStore

    store = ImageStore(image_root(args.data_dir))
    cmd = args.image_command
    if cmd == "import":
        images = store.import_archive(args.file, name=args.name)
        for im in images:
            print(f"imported {', '.join(im.repo_tags) or '<unnamed>'} ({im.id})")
    elif cmd == "ls":
        _ls(store, args.quiet)
    elif cmd == "rm":
        for name in args.names:
            store.remove(name)
            print(f"removed {name}")
    elif cmd == "pull":
        im = asyncio.run(store.pull(args.name, auths=_auths(args.name, args.creds),
                                    insecure_registries=_insecure(args.name, args.insecure)))
        print(f"pulled {args.name} ({im.id})")
    elif cmd == "push":
        digest = asyncio.run(store.push(args.name, auths=_auths(args.name, args.creds),
                                        insecure_registries=_insecure(args.name, args.insecure)))
        print(f"pushed {args.name} ({digest})")
    elif cmd == "build":
        cmdline = shlex.split(args.cmd) if args.cmd is not None else None
        im = store.build(args.dir, args.tag, entrypoint=args.entrypoint, cmd=cmdline,
                         env=args.env or None, workdir=args.workdir, user=args.user)
        print(f"built {im.repo_tags[0]} ({im.id})")
    else:
        raise ValueError(f"unknown image subcommand {cmd!r}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Run ``kyb image ...``; one error line on stderr and exit status 1 on failure."""
    from kybernetes.kubelet.images import ImageError

    try:
        return _run(args)
    except (ImageError, OSError, ValueError) as e:
        msg = e.message if isinstance(e, ImageError) else str(e)
        print(f"error: {msg}", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    """``python -m kybernetes.cli.image ...``: the same subcommands without the rest of ``kyb``."""
    parser = argparse.ArgumentParser(prog="kyb")
    sub = parser.add_subparsers(dest="command", required=True)
    add_parser(sub)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
