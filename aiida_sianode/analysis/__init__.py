"""analysis of aiida-sianode."""
