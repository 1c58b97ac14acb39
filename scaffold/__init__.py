"""scaffold: the torch-scaffold command line (``scaffold --help``).

Importing this package imports nothing heavy (no copier, libcst or torch).
"""

__version__ = "0.1.0"
