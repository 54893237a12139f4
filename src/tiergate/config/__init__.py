"""Configuration: the YAML schema, its loading, and the built-in catalog merge."""
