"""What all services share about messages, and nothing else (services never import each other).

- ``chat``: the protocol-neutral chat schema between client protocols and vendor protocols.
- ``envelope``: ``RequestEnvelope``, published by ingress to ``sy.requests.v1``.
- ``plan``: ``DispatchPlan``, published by the router to ``sy.dispatch.<provider>.v1``.
- ``replies``: ``ReplyChunk`` / ``ReplyFinal``, sent by workers to the waiting ingress (Redis).
- ``outcomes``: ``RequestOutcome`` of async and batch requests, on ``sy.results.v1``.
- ``usage``: ``UsageEvent``, one per vendor attempt, on ``sy.usage.v1``.
- ``errors``: the closed set of ``ErrorCode`` and the ``ErrorInfo`` that travels with them.
- ``topics``: the topic registry (names, partitions, retention).
- ``sealing``: encryption of bodies before they touch Kafka.
- ``catalogue``: the model catalogue (prices, context windows, capabilities) and name resolution.

Every message carries ``schema_version``; fields are only ever added, as optional ones.
"""
