"""Storage, notifications and clients of other services, behind plain Python interfaces."""
