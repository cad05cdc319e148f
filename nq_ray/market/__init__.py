"""Markets: CME Globex sessions, contract codes, expiries and rolls."""
