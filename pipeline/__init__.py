"""Clean, dedupe and archive what the spiders fetch, into a versioned SQL archive."""
