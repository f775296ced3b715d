"""Provider adapters: pure translation between the contract's chat schema and each vendor wire
protocol, plus one error classifier per protocol. The worker does the I/O.

``registry`` holds the closed set of providers; ``base`` the interface every adapter follows.
"""

from services.workers.providers.base import (
    ProviderAdapter,
    ProviderEndpoint,
    ProviderError,
    RequestTranslationError,
    StreamDecoder,
    VendorProtocolError,
    VendorRequest,
    VendorStreamError,
    classify_transport_error,
)
from services.workers.providers.registry import (
    PROVIDERS,
    ProviderSpec,
    UnknownProviderError,
    adapter_for,
    endpoint_for,
)

__all__ = [
    "PROVIDERS",
    "ProviderAdapter",
    "ProviderEndpoint",
    "ProviderError",
    "ProviderSpec",
    "RequestTranslationError",
    "StreamDecoder",
    "UnknownProviderError",
    "VendorProtocolError",
    "VendorRequest",
    "VendorStreamError",
    "adapter_for",
    "classify_transport_error",
    "endpoint_for",
]
