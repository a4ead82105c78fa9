"""parsers of aiida-sianode."""
