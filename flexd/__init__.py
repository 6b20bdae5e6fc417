"""flexd: smart-device control and half-hourly rating daemon (the I/O edge and wiring)."""

__version__ = "0.1.0"
