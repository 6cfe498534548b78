"""`python -m ops.cli`: the portal-archive command."""
from ops.cli import main

main()
