"""calculations of aiida-sianode."""
