"""Pricing: index from spot sources, mark price, funding (pure functions over integer ticks)."""
