"""Production deployment: remote computers and codes from one YAML file, and the PostgreSQL + RabbitMQ profile."""
