"""givenergy: the adapter and its wire format."""
