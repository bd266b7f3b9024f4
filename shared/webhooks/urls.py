"""The policy on webhook URLs: refuse those that would make the farm call into private networks
(SSRF), unless the farm's allowlist names the host or network."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit


class WebhookUrlRefused(ValueError):
    """The webhook URL is not one the farm will call (the message says why)."""


def _allowed(host: str, address: ipaddress._BaseAddress, allowlist: list[str]) -> bool:
    for entry in allowlist:
        if entry == host:
            return True
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def check_webhook_url(url: str, allowlist: list[str]) -> None:
    """Raise WebhookUrlRefused unless ``url`` is http(s) and resolves only to public addresses
    (or to hosts and networks on the allowlist)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookUrlRefused("webhook_url must be an absolute http or https URL")
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise WebhookUrlRefused(f"webhook_url host {parts.hostname!r} does not resolve") from None
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(sockaddr[0])
        private = (
            address.is_loopback
            or address.is_private
            or address.is_link_local
            or address.is_reserved
            or address.is_multicast
            or address.is_unspecified
        )
        if private and not _allowed(parts.hostname, address, allowlist):
            raise WebhookUrlRefused(
                f"webhook_url resolves to {address}, a loopback, private or link-local address"
            )
