"""Helpers shared by every layer; nothing here imports AiiDA at module level."""
