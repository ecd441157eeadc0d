"""The OpenID Connect provider's own tests: one provider for the module's tests that only add
accounts and clients, and a provider of its own for a test that restarts or rotates it."""

from tests.helpers.idp import identity_provider

__all__ = ["identity_provider"]
