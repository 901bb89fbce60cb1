"""The requests blueprint."""
