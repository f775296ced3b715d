"""Client protocols: the translation between what a client sends over HTTP and the contract.

Each protocol is pure translation (no I/O): it parses a decoded request body into
``contracts.chat`` shapes, refusing malformed input with a ``ProtocolError`` that names the
offending parameter, and renders contract results back into the protocol's response shapes.
"""
