"""AiiDA data types of aiida-sianode: labels, datasets and potentials."""
