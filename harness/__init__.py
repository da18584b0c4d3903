"""labharness: rebuild a customer's system in containers and prove things about it."""

__version__ = "0.1.0"
