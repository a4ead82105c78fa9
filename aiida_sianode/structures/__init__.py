"""structures of aiida-sianode."""
