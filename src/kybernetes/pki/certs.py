"""Cluster PKI: the CA, the API server's serving certificate, client identities, SA keys.

Layout of ``pki_dir`` (private keys are mode 0600)::

    ca.crt / ca.key                 cluster CA (ECDSA P-256, CN "kybernetes-ca", 10 years)
    apiserver.crt / apiserver.key   serving certificate, SANs cover every name clients may use
    admin.crt / admin.key           client certificate CN "kubernetes-admin", O "system:masters"
    apiserver-kubelet-client.crt/.key  the API server's client certificate towards kubelets
                                    (CN "kube-apiserver-kubelet-client", O "system:masters")
    sa.key / sa.pub                 RSA 2048 key pair that signs service-account tokens

ECDSA P-256 with SHA-256 is accepted by Go's crypto/tls (kubectl) and by Python's ``ssl``.
Client identity follows the upstream convention: user = subject CN, groups = subject O values.

Everything here is synchronous file and CPU work; async callers use ``asyncio.to_thread``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
import ssl
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CN = "kybernetes-ca"
ADMIN_CN = "kubernetes-admin"
ADMIN_GROUPS = ("system:masters",)
KUBELET_CLIENT_CN = "kube-apiserver-kubelet-client"
APISERVER_CN = "kube-apiserver"
FIRST_SERVICE_IP = "10.96.0.1"
CA_DAYS = 3650
SERVING_DAYS = 3650
CLIENT_DAYS = 365

DEFAULT_DNS_NAMES = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
DEFAULT_IPS = ("127.0.0.1", "::1", FIRST_SERVICE_IP)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True)
class Pki:
    """Paths of the cluster's PKI files (see the module docstring)."""

    dir: Path
    ca_cert: Path
    ca_key: Path
    apiserver_cert: Path
    apiserver_key: Path
    admin_cert: Path
    admin_key: Path
    sa_key: Path
    sa_pub: Path
    apiserver_kubelet_client_cert: Path
    apiserver_kubelet_client_key: Path

    @classmethod
    def at(cls, pki_dir: Path) -> Pki:
        d = Path(pki_dir)
        return cls(
            dir=d,
            ca_cert=d / "ca.crt",
            ca_key=d / "ca.key",
            apiserver_cert=d / "apiserver.crt",
            apiserver_key=d / "apiserver.key",
            admin_cert=d / "admin.crt",
            admin_key=d / "admin.key",
            sa_key=d / "sa.key",
            sa_pub=d / "sa.pub",
            apiserver_kubelet_client_cert=d / "apiserver-kubelet-client.crt",
            apiserver_kubelet_client_key=d / "apiserver-kubelet-client.key",
        )


# --------------------------------------------------------------------------- keys and files


def _new_ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_to_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def cert_to_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _write(path: Path, data: bytes, *, private: bool) -> None:
    """Write atomically; private files are created with mode 0600 from the start."""
    tmp = path.with_name(path.name + ".tmp")
    mode = 0o600 if private else 0o644
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _load_key(path: Path) -> PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
        raise ValueError(f"{path}: unsupported key type {type(key).__name__}")
    return key


def _load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


# --------------------------------------------------------------------------- certificates


def _name(cn: str, orgs: Iterable[str] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def _validity(days: int) -> tuple[dt.datetime, dt.datetime]:
    now = dt.datetime.now(dt.timezone.utc)
    return now - dt.timedelta(minutes=5), now + dt.timedelta(days=days)


def make_ca(cn: str = CA_CN, days: int = CA_DAYS) -> tuple[x509.Certificate, PrivateKey]:
    """A self-signed CA certificate and its key."""
    key = _new_ec_key()
    start, end = _validity(days)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _leaf(
    ca_cert: x509.Certificate,
    ca_key: PrivateKey,
    subject: x509.Name,
    *,
    days: int,
    usage: x509.ObjectIdentifier,
    sans: list[x509.GeneralName] | None = None,
) -> tuple[x509.Certificate, PrivateKey]:
    key = _new_ec_key()
    start, end = _validity(days)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(min(end, ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def make_client_cert(
    ca_cert: x509.Certificate, ca_key: PrivateKey, cn: str, groups: Iterable[str], days: int
) -> tuple[x509.Certificate, PrivateKey]:
    subject = _name(cn, groups)
    return _leaf(ca_cert, ca_key, subject, days=days, usage=ExtendedKeyUsageOID.CLIENT_AUTH)


def make_serving_cert(
    ca_cert: x509.Certificate, ca_key: PrivateKey, dns: Iterable[str], ips: Iterable[IPAddress]
) -> tuple[x509.Certificate, PrivateKey]:
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    sans += [x509.IPAddress(ip) for ip in ips]
    return _leaf(
        ca_cert, ca_key, _name(APISERVER_CN), days=SERVING_DAYS,
        usage=ExtendedKeyUsageOID.SERVER_AUTH, sans=sans,
    )


# --------------------------------------------------------------------------- host names


def split_hosts(hosts: Iterable[str]) -> tuple[list[str], list[IPAddress]]:
    """Split host strings into (DNS names, IP addresses), dropping empties and duplicates."""
    dns: list[str] = []
    ips: list[IPAddress] = []
    for h in hosts:
        h = h.strip().strip("[]")
        if not h:
            continue
        try:
            ip = ipaddress.ip_address(h)
        except ValueError:
            if h.lower() not in dns:
                dns.append(h.lower())
            continue
        if ip not in ips:
            ips.append(ip)
    return dns, ips


def parse_fib_trie(text: str) -> list[str]:
    """Local IPv4 addresses from ``/proc/net/fib_trie`` (entries followed by ``/32 host LOCAL``)."""
    out: list[str] = []
    last: str | None = None
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("|--"):
            last = s[3:].strip()
        elif "/32 host LOCAL" in s and last is not None:
            if last not in out:
                out.append(last)
    return out


def parse_if_inet6(text: str) -> list[str]:
    """Global IPv6 addresses from ``/proc/net/if_inet6`` (scope 00 = global)."""
    out: list[str] = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 4 or len(parts[0]) != 32 or parts[3] != "00":
            continue
        addr = str(ipaddress.IPv6Address(int(parts[0], 16)))
        if addr not in out:
            out.append(addr)
    return out


def host_addresses(proc_net: Path = Path("/proc/net")) -> list[str]:
    """This host's non-loopback, non-link-local addresses, read from /proc (no network calls)."""
    found: list[str] = []
    for name, parse in (("fib_trie", parse_fib_trie), ("if_inet6", parse_if_inet6)):
        try:
            found += parse((proc_net / name).read_text())
        except (OSError, ValueError):
            continue
    out = []
    for a in found:
        ip = ipaddress.ip_address(a)
        if not (ip.is_loopback or ip.is_link_local or ip.is_unspecified):
            out.append(a)
    return out


def default_sans(hosts: Iterable[str] = ()) -> tuple[list[str], list[IPAddress]]:
    """Every name the serving certificate must cover: defaults, hostname, host addresses, hosts."""
    names = [*DEFAULT_DNS_NAMES, socket.gethostname(), *DEFAULT_IPS, *host_addresses(), *hosts]
    return split_hosts(names)


def cert_sans(cert: x509.Certificate) -> tuple[set[str], set[IPAddress]]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set(), set()
    dns = {d.lower() for d in ext.get_values_for_type(x509.DNSName)}
    return dns, set(ext.get_values_for_type(x509.IPAddress))


# --------------------------------------------------------------------------- ensure_pki


def _signed_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _ensure_ca(pki: Pki) -> tuple[x509.Certificate, PrivateKey, bool]:
    if pki.ca_cert.exists() and pki.ca_key.exists():
        return _load_cert(pki.ca_cert), _load_key(pki.ca_key), False
    cert, key = make_ca()
    _write(pki.ca_key, key_to_pem(key), private=True)
    _write(pki.ca_cert, cert_to_pem(cert), private=False)
    return cert, key, True


def _serving_ok(pki: Pki, ca: x509.Certificate, dns: list[str], ips: list[IPAddress]) -> bool:
    if not (pki.apiserver_cert.exists() and pki.apiserver_key.exists()):
        return False
    cert = _load_cert(pki.apiserver_cert)
    have_dns, have_ips = cert_sans(cert)
    return (
        _signed_by(cert, ca)
        and set(dns) <= have_dns
        and set(ips) <= have_ips
        and cert.not_valid_after_utc > dt.datetime.now(dt.timezone.utc)
    )


def _ensure_pair(
    cert_path: Path,
    key_path: Path,
    ca: x509.Certificate,
    make: Callable[[], tuple[x509.Certificate, PrivateKey]],
    fresh_ca: bool,
) -> None:
    ok = cert_path.exists() and key_path.exists() and not fresh_ca
    if ok and _signed_by(_load_cert(cert_path), ca):
        return
    cert, key = make()
    _write(key_path, key_to_pem(key), private=True)
    _write(cert_path, cert_to_pem(cert), private=False)


def _ensure_sa_keys(pki: Pki) -> None:
    if pki.sa_key.exists() and pki.sa_pub.exists():
        return
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pub = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _write(pki.sa_key, key_to_pem(key), private=True)
    _write(pki.sa_pub, pub, private=False)


def ensure_pki(pki_dir: Path, *, hosts: list[str]) -> Pki:
    """Create the cluster PKI in ``pki_dir`` on first call; reuse it afterwards.

    The serving certificate is regenerated when its SANs do not cover the default names plus
    ``hosts`` (or it was not signed by the current CA); other files are only created if missing.
    """
    pki = Pki.at(pki_dir)
    pki.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    ca, ca_key, fresh = _ensure_ca(pki)
    dns, ips = default_sans(hosts)
    if fresh or not _serving_ok(pki, ca, dns, ips):
        cert, key = make_serving_cert(ca, ca_key, dns, ips)
        _write(pki.apiserver_key, key_to_pem(key), private=True)
        _write(pki.apiserver_cert, cert_to_pem(cert), private=False)
    _ensure_pair(
        pki.admin_cert, pki.admin_key, ca,
        lambda: make_client_cert(ca, ca_key, ADMIN_CN, ADMIN_GROUPS, CA_DAYS), fresh,
    )
    _ensure_pair(
        pki.apiserver_kubelet_client_cert, pki.apiserver_kubelet_client_key, ca,
        lambda: make_client_cert(ca, ca_key, KUBELET_CLIENT_CN, ADMIN_GROUPS, CA_DAYS), fresh,
    )
    _ensure_sa_keys(pki)
    return pki


def issue_client_cert(
    pki: Pki, cn: str, groups: list[str], days: int = CLIENT_DAYS
) -> tuple[bytes, bytes]:
    """A client certificate for ``cn``/``groups`` signed by the cluster CA: (cert, key) PEM."""
    ca, ca_key = _load_cert(pki.ca_cert), _load_key(pki.ca_key)
    cert, key = make_client_cert(ca, ca_key, cn, groups, days)
    return cert_to_pem(cert), key_to_pem(key)


# --------------------------------------------------------------------------- TLS


def server_ssl_context(pki: Pki) -> ssl.SSLContext:
    """Serving context: TLS >= 1.2, optional client certificates verified against the CA.

    ``CERT_OPTIONAL`` lets token clients connect without a certificate. A client that does
    present a certificate the CA did not sign fails the handshake (Python's ``ssl`` verifies
    any presented certificate). No ALPN is configured, so Go clients fall back to HTTP/1.1.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(pki.apiserver_cert, pki.apiserver_key)
    ctx.load_verify_locations(cafile=str(pki.ca_cert))
    ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


def _identity_from_name(name: x509.Name) -> tuple[str, list[str]] | None:
    cns = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not cns:
        return None
    groups = [str(a.value) for a in name.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    return str(cns[0].value), groups


def _identity_from_dict(cert: Mapping[str, Any]) -> tuple[str, list[str]] | None:
    user: str | None = None
    groups: list[str] = []
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName" and user is None:
                user = value
            elif key == "organizationName":
                groups.append(value)
    return (user, groups) if user is not None else None


def identity_from_peercert(
    cert: bytes | Mapping[str, Any] | None,
) -> tuple[str, list[str]] | None:
    """(user, groups) from a verified peer certificate: DER bytes or ``getpeercert()`` dict."""
    if not cert:
        return None
    if isinstance(cert, (bytes, bytearray)):
        try:
            parsed = x509.load_der_x509_certificate(bytes(cert))
        except ValueError:
            return None
        return _identity_from_name(parsed.subject)
    return _identity_from_dict(cert)


def identity_from_ssl_object(
    ssl_object: ssl.SSLObject | ssl.SSLSocket | None,
) -> tuple[str, list[str]] | None:
    """Identity of the verified client certificate on a TLS connection, if one was presented.

    With aiohttp: ``request.transport.get_extra_info("ssl_object")``.
    """
    if ssl_object is None:
        return None
    return identity_from_peercert(ssl_object.getpeercert(binary_form=True))
