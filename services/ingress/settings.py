from __future__ import annotations

from services.common.admin_key import AdminKeySetting
from services.common.settings import ServiceSettings, local_url


class IngressSettings(ServiceSettings):
    ingress_host: str = "127.0.0.1"
    ingress_port: int = 8080
    ingress_workers: int = 1
    # The bootstrap admin key. Required: the stack generates one when the user sets none.
    admin_key: AdminKeySetting = None
    # Large enough for a few base64 images; OpenAI's own limit is in the same range.
    max_body_bytes: int = 20 * 1024 * 1024
    # How long a sync or streaming caller is served before a 504, retries and fallbacks
    # included, unless it asks otherwise (``x-switchyard-timeout`` or a body ``timeout``, in
    # seconds, up to ``max_request_timeout_s``).
    request_timeout_s: float = 300.0
    max_request_timeout_s: float = 1800.0
    # How long a request may take to be accepted by Kafka before the caller gets a 503. Longer
    # means a broker hiccup is ridden out; shorter means a dead broker is reported sooner.
    publish_timeout_s: float = 5.0
    # Automatic model choice (``model: "auto"``): reading prompts costs each process ~180 MiB
    # and a second or two at start; a deployment whose callers always name a model may switch
    # it off, and ``auto`` requests are then refused at the door.
    auto_routing: bool = True
    # Spend alert webhooks may call loopback and private addresses: for a local stack or tests.
    webhook_allow_private: bool = False
    # How often each key's use is summed into one ``api_key.used`` audit entry.
    key_use_summary_s: float = 60.0
    # Where the metering service's API is (the same variables metering binds by): the ingress
    # serves the audit log from there.
    metering_host: str = "127.0.0.1"
    metering_port: int = 8091

    @property
    def metering_url(self) -> str:
        return local_url(self.metering_host, self.metering_port)
