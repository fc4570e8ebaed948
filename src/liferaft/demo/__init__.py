"""The demo: a VNF protected at east, east lost entirely, recovered at west, verified from its data."""
