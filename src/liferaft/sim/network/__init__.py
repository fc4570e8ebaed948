"""Simulated network service: state in `state.py`, HTTP facade in `api.py`."""
