"""Certificates: awarded professional titles and skill levels, and the numbers printed on them."""
