"""Meta (Facebook and Instagram) ads for cmis: the Graph API's Marketing and Lead Ads surface."""
