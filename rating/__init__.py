"""Half-hourly rating for IO Go, IO Go capped, IO Flux, Flux and Agile (pure: no clock, no I/O
beyond the explicit file helpers in rating.io)."""

from rating.engine import CoreInput, CoreOutput, rate, rate_core
from rating.io import (
    RATED_COLUMNS,
    parse_reading,
    rated_csv_text,
    rated_to_json,
    read_dispatches,
    read_prices,
    read_readings,
    write_rated_csv,
    write_rated_json,
)
from rating.model import Dispatch, RatedSlot, RatingInputError, Reading
from rating.prices import PriceBook
from rating.tariff import Tariff, load_tariff, parse_tariff

__all__ = [
    "RATED_COLUMNS",
    "CoreInput",
    "CoreOutput",
    "Dispatch",
    "PriceBook",
    "RatedSlot",
    "RatingInputError",
    "Reading",
    "Tariff",
    "load_tariff",
    "parse_reading",
    "parse_tariff",
    "rate",
    "rate_core",
    "rated_csv_text",
    "rated_to_json",
    "read_dispatches",
    "read_prices",
    "read_readings",
    "write_rated_csv",
    "write_rated_json",
]
