"""Offline review map (``map.html``): risk, decision, uncertainty, expected cost, VT0007 density and
observed loss as layers; zones with their audit; roads and settlements; click-to-inspect, split
view, AOI drawing and download — one self-contained file, no request at run time.

How it is built and why: docs/review-map.md. ``rasters`` (read, warp, colour, inspect table),
``vectors`` (GeoJSON), ``page`` (folium page + ``review.js`` / ``review.css``).
"""

from geo_risk.review.page import (
    LAYER_COST,
    LAYER_DECISION,
    LAYER_DENSITY,
    LAYER_RISK,
    LAYER_UNCERTAINTY,
    LAYER_ZONES,
    CompareRun,
    json_for_script,
    write_review_map,
)
from geo_risk.review.rasters import GridArray, read_raster, risk_scale_max

__all__ = ["LAYER_COST", "LAYER_DECISION", "LAYER_DENSITY", "LAYER_RISK", "LAYER_UNCERTAINTY", "LAYER_ZONES",
           "CompareRun", "GridArray", "json_for_script", "read_raster", "risk_scale_max", "write_review_map"]
