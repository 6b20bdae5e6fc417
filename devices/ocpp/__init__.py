"""ocpp: the adapter and its wire format."""
