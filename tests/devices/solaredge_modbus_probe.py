"""Run by tests/devices/test_real_clients_solaredge.py in a child interpreter whose path puts
solaredge_modbus and the pymodbus it was written for (3.5/3.6) ahead of flexd's own pymodbus:
solaredge_modbus 0.8.0 imports pymodbus.payload, pymodbus.register_read_message and
pymodbus.constants.Endian, which pymodbus 3.7+ no longer has, while flexd's adapter needs 3.10+.

Prints one JSON document: what the library's Inverter, meters() and batteries() decode.
Usage: python solaredge_modbus_probe.py HOST PORT
"""

import json
import sys

import solaredge_modbus


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    inverter = solaredge_modbus.Inverter(host=host, port=port, timeout=2, unit=1, retries=2)
    inverter.connect()
    doc = {
        "inverter": inverter.read_all(),
        "meters": {name: m.read_all() for name, m in inverter.meters().items()},
        "batteries": {name: b.read_all() for name, b in inverter.batteries().items()},
    }
    inverter.disconnect()
    json.dump(doc, sys.stdout, default=str)


if __name__ == "__main__":
    main()
