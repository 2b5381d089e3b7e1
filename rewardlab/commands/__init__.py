"""The command line: one module per verb family, each with `add_parser(sub)` and `run(args)`."""
