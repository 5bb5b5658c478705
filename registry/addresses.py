"""Client addresses as the abuse limits count them: one count per subscriber, not per address a subscriber can pick.

Every IPv6 subscriber is given at least a /64 and can send from any of its 2^64 addresses, so an IPv6 address is
counted as its /64 network. An IPv4-mapped IPv6 address (``::ffff:192.0.2.1``, as a dual-stack socket reports an IPv4
peer) is the IPv4 address it maps. Used by every per-address limit and lockout (api/limits.py, holder sign-in).

Many subscribers are given more than a /64 and can send from every /64 of it. A /56 (256 /64s) is what one
subscriber is commonly given (RFC 6177, RIPE-690), so an IPv6 address is also counted as its /56 (``network_key``),
under a proportionately higher limit (api/limits.py). A /48 (65,536 /64s, 256 /56s) is given to one site but also
shared by an ISP's /56 customers, so it is counted as well, as a backstop high enough that one /56 spends at most a
sixteenth of it: one subscriber cannot lock its neighbours out.
"""

from __future__ import annotations

import ipaddress

IPV6_SUBSCRIBER_PREFIX = 64  # the smallest network an IPv6 subscriber is given (RFC 6177), commonly more
IPV6_SITE_PREFIX = 56  # what one subscriber is commonly given (RFC 6177 practice, RIPE-690)
IPV6_BACKSTOP_PREFIX = 48  # the largest network given to one site, or shared by an ISP's /56 customers
IPV6_NETWORK_PREFIXES = (IPV6_SITE_PREFIX, IPV6_BACKSTOP_PREFIX)  # the wider counts, narrower first


def limit_key(address: str) -> str:
    """The key a client address is counted under: an IPv4 address as it is, an IPv4-mapped IPv6 address as its IPv4
    address, any other IPv6 address as its /64 network (``2001:db8:1:2::/64``); text that is no address, as it is."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address  # "unknown", a Unix socket's path: nothing to group
    if isinstance(parsed, ipaddress.IPv4Address):
        return str(parsed)
    if parsed.ipv4_mapped is not None:
        return str(parsed.ipv4_mapped)
    return _network(parsed, IPV6_SUBSCRIBER_PREFIX)


def network_key(address: str, prefix: int) -> str | None:
    """The wider network of ``prefix`` bits an IPv6 client address is counted under as well (one of
    IPV6_NETWORK_PREFIXES: ``2001:db8:1:100::/56``, ``2001:db8:1::/48``). None for an IPv4 address, an IPv4-mapped
    IPv6 address (counted as its IPv4 address only, as before) and text that is no address: those have no wider
    count."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return None
    if isinstance(parsed, ipaddress.IPv4Address) or parsed.ipv4_mapped is not None:
        return None
    return _network(parsed, prefix)


def _network(address: ipaddress.IPv6Address, prefix: int) -> str:
    network = int(address) >> (128 - prefix) << (128 - prefix)  # drops any %zone too
    return str(ipaddress.IPv6Network((network, prefix)))
