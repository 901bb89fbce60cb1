"""Messages FleetOS sends: signed links, who hears about what, and the outbox they go through."""
