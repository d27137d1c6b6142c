"""Durability: the append-only command journal, snapshots, and the one recovery path."""
