"""The leaf every other package stands on: the injected clock, the Europe/London half-hour grid
and the one "field: reason" error base. Imports nothing of flexd's own."""
