"""The dashboard blueprint."""
