"""The control loop: device polling, site state, planning, dispatching commands and records."""
