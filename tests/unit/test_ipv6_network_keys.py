"""Besides its /64, an IPv6 client address is counted as its /56 — one subscriber's allocation — and its /48
(``network_key``). IPv4 addresses, IPv4-mapped ones and text that is no address have no such wider count."""

from __future__ import annotations

import pytest

from registry.addresses import IPV6_BACKSTOP_PREFIX, IPV6_NETWORK_PREFIXES, IPV6_SITE_PREFIX, limit_key, network_key


def test_the_wider_counts_are_a_subscribers_56_then_its_48() -> None:
    assert (IPV6_SITE_PREFIX, IPV6_BACKSTOP_PREFIX) == (56, 48)
    assert IPV6_NETWORK_PREFIXES == (56, 48)


@pytest.mark.parametrize(
    "address",
    [
        "2001:db8:1::1",
        "2001:db8:1:2::101",
        "2001:db8:1:ff00::1",
        "2001:db8:1:ffff:ffff:ffff:ffff:ffff",
        "2001:DB8:1::2",
    ],
)
def test_every_64_of_one_ipv6_48_is_one_network(address: str) -> None:
    assert network_key(address, 48) == "2001:db8:1::/48"


@pytest.mark.parametrize(
    "address", ["2001:db8:1:100::1", "2001:db8:1:1ff::1", "2001:db8:1:1ab:ffff:ffff:ffff:ffff", "2001:DB8:1:180::2"]
)
def test_every_64_of_one_ipv6_56_is_one_subscriber(address: str) -> None:
    assert network_key(address, 56) == "2001:db8:1:100::/56"


def test_neighbouring_networks_are_different_and_a_64_keeps_its_own_key() -> None:
    assert network_key("2001:db8:2::1", 48) == "2001:db8:2::/48"
    assert network_key("2001:db8:1:2::1", 48) != network_key("2001:db8:2:2::1", 48)
    assert network_key("2001:db8:1:1ff::1", 56) != network_key("2001:db8:1:200::1", 56)  # next door, one /48
    assert network_key("2001:db8:1:1ff::1", 48) == network_key("2001:db8:1:200::1", 48)
    assert limit_key("2001:db8:1:2::1") == "2001:db8:1:2::/64"  # the /64 count is as it was


def test_a_link_local_address_with_a_zone_is_its_networks() -> None:
    assert network_key("fe80::1%eth0", 48) == "fe80::/48"
    assert network_key("fe80::1%eth0", 56) == "fe80::/56"


@pytest.mark.parametrize("prefix", IPV6_NETWORK_PREFIXES)
@pytest.mark.parametrize(
    "address",
    ["198.51.100.66", "10.0.0.1", "::ffff:198.51.100.66", "::ffff:c633:6442", "unknown", "", "/run/registry.sock"],
)
def test_ipv4_mapped_and_no_addresses_have_no_wider_network(address: str, prefix: int) -> None:
    assert network_key(address, prefix) is None
