"""Small shared utilities: registries, atomic IO, seeding, errors."""
