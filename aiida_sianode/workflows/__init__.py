"""workflows of aiida-sianode."""
