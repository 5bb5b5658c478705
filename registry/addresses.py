"""Client addresses as the abuse limits count them: one count per subscriber, not per address a subscriber can pick.

Every IPv6 subscriber is given at least a /64 and can send from any of its 2^64 addresses, so an IPv6 address is
counted as its /64 network. An IPv4-mapped IPv6 address (``::ffff:192.0.2.1``, as a dual-stack socket reports an IPv4
peer) is the IPv4 address it maps. Used by every per-address limit and lockout (api/limits.py, holder sign-in).
"""

from __future__ import annotations

import ipaddress

IPV6_SUBSCRIBER_PREFIX = 64  # the smallest network an IPv6 subscriber is given (RFC 6177), commonly more


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
    network = int(parsed) >> (128 - IPV6_SUBSCRIBER_PREFIX) << (128 - IPV6_SUBSCRIBER_PREFIX)  # drops any %zone too
    return str(ipaddress.IPv6Network((network, IPV6_SUBSCRIBER_PREFIX)))
