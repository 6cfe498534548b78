"""Fetch and parse the portal. Nothing here touches the database."""
