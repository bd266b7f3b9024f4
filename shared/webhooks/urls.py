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


def check_webhook_url(url: str, allowlist: list[str]) -> str:
    """The address ``url`` resolves to, if it is http(s) and resolves only to public addresses
    (or to hosts and networks on the allowlist); else raise WebhookUrlRefused."""
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
    return str(ipaddress.ip_address(infos[0][4][0]))


def pinned(url: str, address: str) -> tuple[str, dict[str, str], dict[str, str]]:
    """``url`` with its host replaced by ``address`` (the one checked), and the Host header and
    TLS server name that keep it the same request: the connection goes where the check looked,
    whatever the name resolves to a moment later (DNS rebinding)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    ip = f"[{address}]" if ":" in address else address
    netloc = f"{ip}:{parts.port}" if parts.port else ip
    header = f"{host}:{parts.port}" if parts.port else host
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    return parts._replace(netloc=netloc).geturl(), {"Host": header}, extensions
