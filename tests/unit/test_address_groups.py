"""The abuse limits count a client address as its subscriber: an IPv6 address by its /64, an IPv4-mapped IPv6 address
as its IPv4 address, an IPv4 address as it is."""

from __future__ import annotations

import pytest

from registry.addresses import limit_key


@pytest.mark.parametrize(
    "address",
    ["2001:db8:1:2::101", "2001:db8:1:2::102", "2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:DB8:1:2:0:0:0:1"],
)
def test_every_address_of_one_ipv6_64_is_one_key(address: str) -> None:
    assert limit_key(address) == "2001:db8:1:2::/64"


def test_neighbouring_ipv6_64s_are_different_keys() -> None:
    assert limit_key("2001:db8:1:2::1") != limit_key("2001:db8:1:3::1")
    assert limit_key("2001:db8:1:3::1") == "2001:db8:1:3::/64"


def test_an_ipv4_mapped_ipv6_address_is_its_ipv4_address() -> None:
    assert limit_key("::ffff:198.51.100.66") == "198.51.100.66"
    assert limit_key("::ffff:c633:6442") == "198.51.100.66"
    assert limit_key("::ffff:198.51.100.67") != limit_key("::ffff:198.51.100.66")  # no /64 for these


@pytest.mark.parametrize("address", ["198.51.100.66", "10.0.0.1", "203.0.113.255"])
def test_an_ipv4_address_is_itself(address: str) -> None:
    assert limit_key(address) == address


def test_a_link_local_address_with_a_zone_is_its_64() -> None:
    assert limit_key("fe80::1%eth0") == "fe80::/64"


@pytest.mark.parametrize("text", ["unknown", "", "not an address", "/run/registry.sock", "2001:db8:1:2::/64"])
def test_text_that_is_no_address_is_kept_as_it_is(text: str) -> None:
    assert limit_key(text) == text
