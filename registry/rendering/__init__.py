"""Rendering certificates for people: QR codes (PNG, SVG) and the A4 e-certificate PDF with its credential attached."""
