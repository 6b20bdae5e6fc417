"""Device simulators that speak the devices' real protocols on loopback, over one world model."""
