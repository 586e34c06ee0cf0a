"""Google Ads for cmis: OAuth 2, manager-account hierarchies, GAQL sync, lead form webhooks."""
