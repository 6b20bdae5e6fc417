"""Device adapters: one module per brand, all behind the small interfaces in :mod:`devices.base`."""
