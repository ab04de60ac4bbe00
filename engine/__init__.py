"""gitward: a GitOps engine whose facts, rules and decisions are open to inspection."""

__version__ = "0.1.0"
