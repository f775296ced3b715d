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
    # How long a sync or streaming caller is served before a 504, unless it asks for less.
    request_timeout_s: float = 600.0

    @model_validator(mode="after")
    def _refuse_placeholder_keys(self) -> IngressSettings:
        if self.admin_key is not None:
            value = self.admin_key.get_secret_value()
            if len(value) < 16 or value.lower() in {"changeme", "change-me", "admin", "secret"}:
                raise ValueError("SWITCHYARD_ADMIN_KEY must be a real secret of 16+ characters")
        return self
