"""Energy from telemetry: half-hour integrators, the site meter and the daemon's rater."""
