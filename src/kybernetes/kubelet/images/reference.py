"""Image references: parsing, normalisation and the ``:latest`` pull-policy rule (pure, no I/O).

A reference is ``[domain/]path[:tag][@digest]`` with the grammar of the distribution project:
lower-case path components separated by ``/``; the first component is a domain when it contains a
``.`` or a ``:`` or is ``localhost``. Without a domain the image lives on Docker Hub (``docker.io``)
and a single-component path gets the ``library/`` prefix. Without tag and digest the tag is
``latest``. So ``busybox`` normalises to ``docker.io/library/busybox:latest``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InvalidReference

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
DEFAULT_TAG = "latest"
OFFICIAL_REPO_PREFIX = "library/"

_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(
    rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
)
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}")
_SHA256_HEX = re.compile(r"[a-f0-9]{64}")
NAME_MAX = 255


@dataclass(frozen=True)
class Reference:
    """A parsed, normalised reference. ``tag`` is "" when only a digest was given."""

    domain: str
    path: str
    tag: str = ""
    digest: str = ""

    @property
    def name(self) -> str:
        """``domain/path``: the repository, as stored in the local index."""
        return f"{self.domain}/{self.path}"

    def __str__(self) -> str:
        s = self.name
        if self.tag:
            s += ":" + self.tag
        if self.digest:
            s += "@" + self.digest
        return s

    @property
    def tagged(self) -> str:
        """``name:tag`` ("" when the reference has no tag)."""
        return f"{self.name}:{self.tag}" if self.tag else ""

    def with_digest(self, digest: str) -> str:
        """``name@digest``: the form Kubernetes reports as a repo digest / imageID."""
        return f"{self.name}@{digest}"

    @property
    def pull_target(self) -> str:
        """What to ask the registry for: the digest when pinned, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG


def parse_reference(ref: str) -> Reference:
    """Parse and normalise ``ref``; raise ``InvalidReference`` when it is not a reference."""
    if not isinstance(ref, str) or not ref or ref != ref.strip():
        raise InvalidReference(f"couldn't parse image name \"{ref}\": invalid reference format")
    rest, digest = ref, ""
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not _DIGEST.fullmatch(digest):
            raise InvalidReference(f"couldn't parse image name \"{ref}\": invalid digest format")
        if digest.startswith("sha256:") and not _SHA256_HEX.fullmatch(digest[7:]):
            raise InvalidReference(f"couldn't parse image name \"{ref}\": invalid checksum digest length")
    tag = ""
    last = rest.rsplit("/", 1)[-1]
    if ":" in last:
        rest, tag = rest.rsplit(":", 1)
        if not _TAG.fullmatch(tag):
            raise InvalidReference(f"couldn't parse image name \"{ref}\": invalid tag format")
    domain, path = split_domain(rest, original=ref)
    for comp in path.split("/"):
        if not _COMPONENT.fullmatch(comp):
            if comp.lower() != comp and _COMPONENT.fullmatch(comp.lower()):
                raise InvalidReference(
                    f"couldn't parse image name \"{ref}\": repository name must be lowercase")
            raise InvalidReference(f"couldn't parse image name \"{ref}\": invalid reference format")
    if len(domain) + 1 + len(path) > NAME_MAX:
        raise InvalidReference(f"couldn't parse image name \"{ref}\": repository name must not be "
                               f"more than {NAME_MAX} characters")
    if not tag and not digest:
        tag = DEFAULT_TAG
    return Reference(domain=domain, path=path, tag=tag, digest=digest)


def split_domain(name: str, *, original: str | None = None) -> tuple[str, str]:
    """Split ``name`` (no tag or digest) into (domain, path), applying the Docker Hub defaults."""
    original = original if original is not None else name
    if not name:
        raise InvalidReference(f"couldn't parse image name \"{original}\": invalid reference format")
    first, sep, remainder = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        if not _DOMAIN.fullmatch(first):
            raise InvalidReference(f"couldn't parse image name \"{original}\": invalid domain")
        domain, path = first, remainder
    else:
        domain, path = DEFAULT_DOMAIN, name
    if not path:
        raise InvalidReference(f"couldn't parse image name \"{original}\": invalid reference format")
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = OFFICIAL_REPO_PREFIX + path
    return domain, path


def normalize_ref(ref: str) -> str:
    """The canonical string of ``ref``: ``busybox`` -> ``docker.io/library/busybox:latest``."""
    return str(parse_reference(ref))


def is_valid_reference(ref: str) -> bool:
    try:
        parse_reference(ref)
    except InvalidReference:
        return False
    return True


def default_pull_policy(image: str) -> str:
    """Kubernetes' defaulting of ``imagePullPolicy``: ``Always`` for ``:latest`` or no tag (and no
    digest), else ``IfNotPresent``. Judged on the string as written, before normalisation."""
    rest = image.split("@", 1)[0]
    if "@" in image:
        return "IfNotPresent"
    last = rest.rsplit("/", 1)[-1]
    tag = last.rsplit(":", 1)[1] if ":" in last else ""
    return "Always" if tag in ("", DEFAULT_TAG) else "IfNotPresent"


def should_pull(policy: str, present: bool) -> bool:
    """Whether ``ensure`` contacts the registry: Always -> yes; IfNotPresent -> when missing;
    Never -> no (a missing image is then an ``ErrImageNeverPull`` error)."""
    if policy == "Always":
        return True
    if policy == "Never":
        return False
    return not present


def registry_host(domain: str) -> str:
    """The host[:port] to contact for a domain: Docker Hub's API lives on registry-1.docker.io."""
    return "registry-1.docker.io" if domain == DEFAULT_DOMAIN else domain


def is_loopback_registry(domain: str) -> bool:
    """Registries on localhost / 127.0.0.0/8 / ::1 are spoken to over plain HTTP (as containerd does)."""
    host = domain
    if host.startswith("["):
        host = host[1:host.find("]")] if "]" in host else host
    else:
        host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return host == "localhost" or host.startswith("127.") or host == "::1"


def looks_like_id(s: str) -> bool:
    """``sha256:<hex>`` or a bare hex prefix of at least 12 characters (how crictl names images)."""
    h = s[7:] if s.startswith("sha256:") else s
    return 12 <= len(h) <= 64 and all(c in "0123456789abcdef" for c in h)
