"""label of aiida-sianode."""
