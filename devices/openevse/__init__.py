"""openevse: the adapter and its wire format."""
