"""Besides its /64, an IPv6 client address is counted as its /48 (``network_key``): the allocation a subscriber given
a /56 or a /48 sends from. IPv4 addresses, IPv4-mapped ones and text that is no address have no such wider count."""

from __future__ import annotations

import pytest

from registry.addresses import limit_key, network_key


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
    assert network_key(address) == "2001:db8:1::/48"


def test_neighbouring_48s_are_different_networks_and_a_64_keeps_its_own_key() -> None:
    assert network_key("2001:db8:2::1") == "2001:db8:2::/48"
    assert network_key("2001:db8:1:2::1") != network_key("2001:db8:2:2::1")
    assert limit_key("2001:db8:1:2::1") == "2001:db8:1:2::/64"  # the /64 count is as it was


def test_a_link_local_address_with_a_zone_is_its_48() -> None:
    assert network_key("fe80::1%eth0") == "fe80::/48"


@pytest.mark.parametrize(
    "address",
    ["198.51.100.66", "10.0.0.1", "::ffff:198.51.100.66", "::ffff:c633:6442", "unknown", "", "/run/registry.sock"],
)
def test_ipv4_mapped_and_no_addresses_have_no_wider_network(address: str) -> None:
    assert network_key(address) is None
