"""Portal replica."""
