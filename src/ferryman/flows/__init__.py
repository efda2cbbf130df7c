"""Flows: what ferryman does on hosts, as reads or as lists of steps."""
