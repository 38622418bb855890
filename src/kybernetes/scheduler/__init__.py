"""The scheduler: a framework of small plugins (pure) plus the cache and queue that feed it."""
