"""selection of aiida-sianode."""
