"""enphase: the adapter and its wire format."""
