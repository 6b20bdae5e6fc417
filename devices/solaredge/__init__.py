"""solaredge: the adapter and its wire format."""
