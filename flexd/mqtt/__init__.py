"""The MQTT bus: retained device state, plans and rated slots out; commands in."""
