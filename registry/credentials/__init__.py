"""What the registry publishes for verifiers that work without it: the signed credential (W3C VC 2.0 / Open Badges
3.0 vocabulary), each body's signed Bitstring Status Lists, the JWKS, and the offline check of all three."""
