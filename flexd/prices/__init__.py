"""Prices: the Octopus unit-rates feed over HTTP or from files, into the one price book."""
