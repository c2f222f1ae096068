"""Where the server may send requests to a URL a user chose: webhooks, and the
OpenAI-compatible endpoints of the dataset forge.

An unchecked URL would let that user reach what only the server can: its own loopback
services, the private network, the cloud metadata endpoint. So the host must be a
public address (a name is resolved and every address it resolves to must be public),
unless private targets are allowed outright or the host is one the operator listed.
Metadata services are refused even then. Webhooks check at registration and again
before each attempt, and the attempt connects to the very address that was checked, so
a name re-pointed after the check (DNS rebinding) gains nothing.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud metadata services: AWS/GCP/Azure/OpenStack, AWS over IPv6, Alibaba.
METADATA_ADDRESSES = {ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")}
METADATA_NAMES = {"metadata", "metadata.google.internal", "metadata.goog"}


class TargetRefused(ValueError):
    """Why a URL may not be a webhook target, in words for the user."""


@dataclass(frozen=True)
class Target:
    url: httpx.URL
    # The checked address to connect to; None when private targets are allowed (no pinning).
    address: IPAddress | None


def parse_url(raw: str) -> httpx.URL:
    """The URL if it is an absolute http(s) URL naming a host, else TargetRefused."""
    import httpx  # on first use: the API starts without it

    try:
        url = httpx.URL(raw)
    except httpx.InvalidURL as exc:
        raise TargetRefused(f"not a valid URL: {exc}") from exc
    if url.scheme not in ("http", "https"):
        raise TargetRefused("the URL must start with http:// or https://")
    if not url.host:
        raise TargetRefused("the URL must name a host")
    if url.userinfo:
        # Shown back by GET and written in logs: receivers check the signature instead.
        raise TargetRefused("the URL must not carry a user name or password")
    return url


def checked_target(raw: str, allow_private: bool, allowed_hosts: Iterable[str] = ()) -> Target:
    """The URL and the address to reach it at, or TargetRefused saying why it may not be
    reached. `allowed_hosts` are host names or addresses the operator vouched for."""
    url = parse_url(raw)
    if allow_private:
        return Target(url, None)
    host = url.host.lower().rstrip(".")
    if host in METADATA_NAMES:
        raise TargetRefused(f"host {host!r} is a cloud metadata service")
    addresses = _addresses(host, url.port or (443 if url.scheme == "https" else 80))
    listed = host in {h.lower().rstrip(".") for h in allowed_hosts}
    for address in addresses:
        if reason := _refusal(address):
            if listed and address not in METADATA_ADDRESSES:
                continue
            named = "" if str(address) == host else f" (it resolves to {address})"
            raise TargetRefused(f"host {host!r}{named} is {reason}; only public addresses may be reached")
    return Target(url, addresses[0])


def _addresses(host: str, port: int) -> list[IPAddress]:
    try:
        return [_unmapped(ipaddress.ip_address(host))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise TargetRefused(f"host {host!r} could not be resolved") from exc
    # getaddrinfo may add a scope ("fe80::1%eth0"): the address is what precedes it.
    return [_unmapped(ipaddress.ip_address(str(info[4][0]).split("%")[0])) for info in infos]


def _unmapped(address: IPAddress) -> IPAddress:
    # ::ffff:127.0.0.1 is 127.0.0.1, whatever the IPv6 flags say.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _refusal(address: IPAddress) -> str | None:
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    for flag, reason in (
        ("is_loopback", "a loopback address"),
        ("is_link_local", "a link-local address"),
        ("is_unspecified", "an unspecified address"),
        ("is_multicast", "a multicast address"),
        ("is_private", "a private address"),
    ):
        if getattr(address, flag):
            return reason
    # Shared (carrier-grade NAT), reserved and documentation ranges: not reachable publicly either.
    return None if address.is_global else "not a public address"


def request_parts(target: Target) -> tuple[httpx.URL, dict[str, str], dict[str, str]]:
    """URL, extra headers and httpx extensions that send to the checked address while
    the receiver still sees (Host header) and TLS still verifies (SNI) the named host."""
    if target.address is None or str(target.address) == target.url.host:
        return target.url, {}, {}
    host_header = target.url.netloc.decode("ascii")
    extensions = {"sni_hostname": target.url.host} if target.url.scheme == "https" else {}
    return target.url.copy_with(host=str(target.address)), {"Host": host_header}, extensions
