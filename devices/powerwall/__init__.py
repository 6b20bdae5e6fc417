"""powerwall: the adapter and its wire format."""
