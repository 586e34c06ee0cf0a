"""The HTTP service (`cmis serve`): health, the org-scoped API, webhooks, OAuth callbacks."""
