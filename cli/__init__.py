"""The ``registry`` command. It sits beside the API, above the domain: it may import the app; ``registry/`` never
imports it."""
