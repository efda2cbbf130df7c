"""The command line: thin modules that parse, call a flow and render."""
