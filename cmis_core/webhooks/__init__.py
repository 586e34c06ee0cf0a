"""Webhook reception: signature checks now; the ASGI app and the durable inbox come later.

``cmis_core.webhooks.hmac`` holds the constant-time HMAC helpers and a verifier base class.
"""
