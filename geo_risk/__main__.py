"""`python -m geo_risk` = `geo-risk`."""

from geo_risk.cli import app

app(prog_name="geo-risk")
