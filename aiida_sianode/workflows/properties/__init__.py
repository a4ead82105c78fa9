"""properties of aiida-sianode."""
