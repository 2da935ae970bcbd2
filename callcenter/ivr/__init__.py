"""The IVR: a TOML menu and self-service flows (pure), run over FastAGI for Asterisk.

menu.py (the file and its validation) · engine.py (menu navigation) · flows.py (request
status, table-and-chair, survey) · steps.py (what the pure side asks of its driver) ·
agi.py (the AGI protocol) · server.py (the FastAGI server) · client.py (Asterisk's side, for
the simulator and tests) · desk.py (tickets and surveys as the flows see them) · surveys.py
and dialer.py (survey storage and call-backs) · stats.py (metrics) · service.py (start-up).
"""
