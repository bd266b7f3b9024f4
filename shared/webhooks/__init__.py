"""Telling a client its job ended. ``outbox`` writes the event in the transaction that ends the
job; ``delivery`` makes each attempt (claimed by a compare-and-set, the HTTP call outside any
transaction) and retries with backoff; ``signing`` signs per the Standard Webhooks spec; ``urls``
refuses URLs that resolve to private networks (SSRF)."""
