"""engines of aiida-sianode."""
