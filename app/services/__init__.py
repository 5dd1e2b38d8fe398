"""Business logic and every query. Services flush; the caller's session scope commits."""
