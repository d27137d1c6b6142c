"""Simulation: agents and sessions that drive the real engine through its public commands."""
