"""Request quotas: token buckets per API key and per tenant, in process or shared through Redis."""
