"""The short error tree every adapter translates its library's and protocol's errors into, once."""

from __future__ import annotations


class DeviceError(Exception):
    """Base of every error an adapter raises."""


class DeviceUnavailable(DeviceError):
    """Cannot reach the device, or it timed out: retry with jittered, capped backoff."""


class AuthenticationFailed(DeviceError):
    """Credentials or token refused: needs a person, do not hammer the device."""


class NotSupported(DeviceError):
    """The device or adapter cannot do this command: never retry."""


class BadPayload(DeviceError):
    """The device answered with something we cannot parse or that fails a sanity check."""
