"""`python -m tiergate` runs the command line."""

from tiergate.cli.main import main

main()
