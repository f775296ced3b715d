from __future__ import annotations

from pydantic import SecretStr, model_validator

from services.common.settings import ServiceSettings


class IngressSettings(ServiceSettings):
    ingress_host: str = "127.0.0.1"
    ingress_port: int = 8080
    ingress_workers: int = 1
    # The bootstrap admin key. Required: the stack generates one when the user sets none.
    admin_key: SecretStr | None = None
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

    @model_validator(mode="after")
    def _refuse_placeholder_keys(self) -> IngressSettings:
        if self.admin_key is not None:
            value = self.admin_key.get_secret_value()
            if len(value) < 16 or value.lower() in {"changeme", "change-me", "admin", "secret"}:
                raise ValueError("SWITCHYARD_ADMIN_KEY must be a real secret of 16+ characters")
        return self
