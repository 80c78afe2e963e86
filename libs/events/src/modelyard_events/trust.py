"""Who a service trusts: its own event signing key and the public keys pinned per source (DESIGN §3).

Read from the environment by each service's settings (they subclass `EventTrustSettings`):

- MODELYARD_EVENT_SIGNING_KEY: this service's Ed25519 private key (base64url of the raw 32 bytes),
  held only by the processes that append to its log;
- MODELYARD_EVENT_PUBLIC_KEYS: JSON `{"<source>": ["<public key>", ...], ...}`, the keys a consumer
  accepts for each source it reads (several during a rotation).

`python -m modelyard_events.trust` prints a new key pair.
"""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from modelyard_events.signing import HeadSigner, HeadVerifier, SigningKeyError, keyring_from_json


class EventTrustSettings(BaseSettings):
    """The signing key and pinned public keys of one process (see the module's docstring)."""

    model_config = SettingsConfigDict(env_prefix="MODELYARD_", extra="ignore")

    event_signing_key: SecretStr | None = None
    event_public_keys: str = Field(default="{}")

    @field_validator("event_signing_key")
    @classmethod
    def _a_key(cls, key: SecretStr | None) -> SecretStr | None:
        if key is not None:
            HeadSigner.from_text(key.get_secret_value())  # SigningKeyError (a ValueError) says why
        return key

    @field_validator("event_public_keys")
    @classmethod
    def _pinned_keys(cls, text: str) -> str:
        keyring_from_json(text)
        return text

    def head_signer(self) -> HeadSigner:
        """This service's signer; SigningKeyError naming the setting when it is missing."""
        if self.event_signing_key is None:
            raise SigningKeyError(
                "MODELYARD_EVENT_SIGNING_KEY is not set: a service signs the log it writes "
                "(make one with `python -m modelyard_events.trust`)"
            )
        return HeadSigner.from_text(self.event_signing_key.get_secret_value())

    def keys_for(self, source: str) -> HeadVerifier:
        """The public keys pinned for `source`; SigningKeyError when none are."""
        keyring = keyring_from_json(self.event_public_keys)
        if source not in keyring:
            raise SigningKeyError(
                f"MODELYARD_EVENT_PUBLIC_KEYS pins no key for {source!r}: a consumer applies only "
                f"events signed with a pinned key (pinned sources: {', '.join(sorted(keyring)) or 'none'})"
            )
        return keyring[source]


def main() -> None:
    """Print a new key pair as environment lines."""
    signer = HeadSigner.generate()
    print(f"MODELYARD_EVENT_SIGNING_KEY={signer.private_text()}")
    print(f"# pin in consumers: {signer.public_text()}  (key id {signer.key_id})")


if __name__ == "__main__":
    main()
