"""Federation between regional nodes: each region's node answers for the certificates its numbers carry.

``protocol`` is what crosses the wire (service tokens, signed statements), ``breaker`` and ``peers`` the forwarding
client (one pooled httpx client, bounded retries and a circuit breaker per peer, a short answer cache), ``answers``
what a peer's signed answer must agree with before it is passed on, and ``forwarding`` decides, for verification by
number, whether this node or a peer answers.
"""
