"""Authenticating a webhook before its body is parsed, one module per kind of proof:

- `authenticate`: picks the check the source's `auth` names and reads the expected secret;
- `shared_secrets`: a static header, HTTP Basic or a query parameter equal to a secret;
- `standard_webhooks`: the Standard Webhooks HMAC signature and its timestamp.

Every comparison is constant-time. May import: model, store (the webhook secrets), runtime.
"""
