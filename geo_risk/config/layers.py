"""Input layers and the grid: rasters, vectors, ecological weight, zones, forest change in each of its
formats (docs/formats.md) and the filling of missing values."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from geo_risk.config.base import _Strict


class RasterLayer(_Strict):
    """A raster resampled onto the grid; ``band`` picks one band of a multi-band file. ``resampling``
    ``auto``: a ``continuous`` layer bilinear (average when the file is finer than the grid), a
    ``categorical`` one nearest (mode when finer); ``nodata`` for a file that carries no nodata value."""

    path: Path
    band: int | None = Field(None, ge=1)
    kind: Literal["continuous", "categorical"] = "continuous"
    resampling: Literal["auto", "nearest", "bilinear", "cubic", "average", "mode"] = "auto"
    nodata: float | None = None

    @model_validator(mode="after")
    def _kind_fits_resampling(self) -> RasterLayer:
        if self.kind == "categorical" and self.resampling in ("bilinear", "cubic", "average"):
            raise ValueError(f"resampling {self.resampling} blends the classes of a categorical layer into values "
                             "that are no class — use nearest (mode when the file is finer than the grid) or auto")
        return self


class EcoRaster(RasterLayer):
    """An ecological-weight raster (biomass…), scaled to [0, 1] by its 0.99 quantile over forest."""

    source: Literal["raster"] = "raster"
    # the scaled weight is also an input band of the model ("eco_weight"), so the network can tell valuable
    # forest from the rest: about +1 point of eco-weighted recall at equal loss.lambda_eco on the demo
    as_input: bool = True
    # the weight is the scaled raster raised to this power (loss, input band and eco-weighted metrics alike):
    # > 1 sets the most valuable forest further apart, so loss.lambda_eco can move the map further towards
    # it (docs/losses.md)
    power: float = Field(1.0, gt=0, le=10, allow_inf_nan=False)


class EcoPolygons(_Strict):
    """An ecological weight from polygons (e.g. protected areas): ``value`` inside every polygon, or
    each polygon's numeric ``field``; ``background`` elsewhere. Weights in [0, 1]."""

    source: Literal["polygons"]
    path: Path
    layer: str | None = None
    crs: str | None = None
    value: float | None = Field(None, ge=0, le=1)
    field: str | None = None
    background: float = Field(0.0, ge=0, le=1)
    # the scaled weight is also an input band of the model ("eco_weight"); a small polygon becomes a
    # location flag the network can over-fit (docs/losses.md, Martinique): measure, or set false
    as_input: bool = True

    @model_validator(mode="after")
    def _value_or_field(self) -> EcoPolygons:
        if self.value is not None and self.field is not None:
            raise ValueError("give value (one weight inside every polygon) or field (each polygon's weight), not both")
        return self


class EcoForestDensity(_Strict):
    """An ecological weight from the forest itself, for regions without a biomass or habitat layer:
    forest area density (Riitters et al. 2000, *Conservation Ecology* 4(2):3), the share of forest in a
    square window of side ``window_m`` around each pixel, from the forest at the start of the earliest
    period (no later state: that would leak the training labels). Interior forest of large blocks weighs
    1, a pixel of a thin strip or an isolated patch little — the intactness that edge effects erode."""

    source: Literal["forest_density"]
    window_m: float = Field(1000.0, gt=0, allow_inf_nan=False)
    # the weight is the share raised to this power: > 1 sets interior forest further apart from edges and
    # strips (at 3 a pixel of a straight edge, share ≈ 0.5, weighs 0.125 against 1 inside)
    power: float = Field(1.0, gt=0, le=10, allow_inf_nan=False)
    # the network already sees the forest band the weight is derived from: no band by default
    as_input: bool = False


def _eco_source(v) -> str:
    return v.get("source", "raster") if isinstance(v, dict) else getattr(v, "source", "raster")


EcoWeightConfig = Annotated[
    Annotated[EcoRaster, Tag("raster")] | Annotated[EcoPolygons, Tag("polygons")]
    | Annotated[EcoForestDensity, Tag("forest_density")], Discriminator(_eco_source)
]


class VectorLayer(_Strict):
    """A vector layer: a file (Shapefile, GeoPackage, GeoJSON, GeoParquet…), the ``layer`` inside it when
    it holds several, and the ``crs`` to assume when the file has none (a Shapefile without .prj).
    A plain path is short for ``{path: …}``."""

    path: Path
    layer: str | None = None
    crs: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _plain_path(cls, data):
        return {"path": data} if isinstance(data, (str, Path)) else data


class GridConfig(_Strict):
    """The grid every layer is aligned on: the grid of a ``reference`` raster, or a projected ``crs``
    with ``resolution_m`` over ``bounds`` [xmin, ymin, xmax, ymax] (in that CRS) or the extent of an
    ``aoi`` polygon layer — pixel edges on multiples of the resolution."""

    reference: Path | None = None
    crs: str | None = None
    resolution_m: float | None = Field(None, gt=0)
    bounds: tuple[float, float, float, float] | None = None
    aoi: VectorLayer | None = None

    @model_validator(mode="after")
    def _one_way(self) -> GridConfig:
        built = [k for k in ("crs", "resolution_m", "bounds", "aoi") if getattr(self, k) is not None]
        if self.reference is not None:
            if built:
                raise ValueError(f"give either reference or crs + resolution_m + bounds/aoi, not both ({built})")
        elif self.crs is None or self.resolution_m is None or (self.bounds is None) == (self.aoi is None):
            raise ValueError("give reference (a raster whose grid to use), or crs, resolution_m and one of "
                             "bounds or aoi")
        return self


class ZonesConfig(_Strict):
    """Community zones. ``polygons``: a territory layer; ``voronoi_points``: catchments of points."""

    source: Literal["polygons", "voronoi_points"]
    path: Path
    layer: str | None = None
    crs: str | None = None
    name_field: str = "name"
    note: str = ""

    @property
    def vector(self) -> VectorLayer:
        return VectorLayer(path=self.path, layer=self.layer, crs=self.crs)


# --- forest change, one model per format (docs/formats.md says what each can express) -------------

class CodesForestChange(_Strict):
    """forestatrisk codes over ``years`` Y0..Yn: 0 non-forest or nodata, k = 1..n lost between Y(k−1)
    and Yk, n+1 forest in Yn (e.g. fcc12345 with years [2000, 2005, 2010, 2015, 2020])."""

    format: Literal["codes"]
    path: Path
    band: int | None = Field(None, ge=1)
    years: list[int] = Field(min_length=2)


class ProdesForestChange(_Strict):
    """PRODES classes by their legend names: ``{value: name}`` with ``dYYYY`` (deforested in PRODES year
    YYYY), ``Forest``, ``Cloud…``/``NoData`` (no data); any other name is non-forest."""

    format: Literal["prodes"]
    path: Path
    band: int | None = Field(None, ge=1)
    classes: dict[int, str]
    last_year: int | None = None


class YearlyMasksForestChange(_Strict):
    """One forest mask per year: ``files`` {year: file}, or one file's ``bands`` {year: band}."""

    format: Literal["yearly_masks"]
    files: dict[int, Path] | None = None
    path: Path | None = None
    bands: dict[int, int] | None = None
    forest_values: list[int] = [1]

    @model_validator(mode="after")
    def _one_way(self) -> YearlyMasksForestChange:
        if (self.files is None) == (self.path is None) or (self.path is None) != (self.bands is None):
            raise ValueError("give either files {year: file} or path and bands {year: band}")
        if len(self.files or self.bands) < 2:
            raise ValueError("give at least two years")
        return self


class HansenForestChange(_Strict):
    """Hansen Global Forest Change: ``lossyear`` (0 no loss, v = lost in 2000+v), ``treecover2000`` (%)
    and the canopy cover that makes forest; ``last_year`` of the GFC version (v1.11: 2023)."""

    format: Literal["hansen"]
    lossyear: Path
    treecover2000: Path
    canopy_cover_pct: float = Field(30.0, gt=0, le=100)
    last_year: int = Field(gt=2000)


class MaskFile(_Strict):
    """A band of a raster and the values that count (1 by default)."""

    path: Path
    band: int | None = Field(None, ge=1)
    values: list[int] = [1]


class ForestMask(MaskFile):
    year: int


class LossMask(MaskFile):
    start_year: int
    end_year: int


class LossMasksForestChange(_Strict):
    """A ``forest`` mask in its year and binary ``loss`` masks over consecutive intervals from it."""

    format: Literal["loss_masks"]
    forest: ForestMask
    loss: list[LossMask] = Field(min_length=1)

    @model_validator(mode="after")
    def _consecutive(self) -> LossMasksForestChange:
        year = self.forest.year
        for i, m in enumerate(self.loss):
            if m.start_year != year or m.end_year <= m.start_year:
                raise ValueError(f"loss[{i}] covers {m.start_year}→{m.end_year}: the loss masks must follow each "
                                 f"other from the forest mask's year {self.forest.year} (this one from {year})")
            year = m.end_year
        return self


ForestChangeConfig = Annotated[
    CodesForestChange | ProdesForestChange | YearlyMasksForestChange | HansenForestChange | LossMasksForestChange,
    Field(discriminator="format"),
]


class MissingConfig(_Strict):
    """A raster's missing values on forest pixels (nodata, beyond the file): filled, so that every
    forest pixel gets a prediction — with the ``nearest`` valid value or the train period's
    ``median``; ``indicator``: add a 0/1 band ``<name>_missing`` for each raster that misses any."""

    fill: Literal["nearest", "median"] = "nearest"
    indicator: bool = False


class LayersConfig(_Strict):
    """Input layers. ``forest_change`` in one of the formats of docs/formats.md (``format:``)."""

    forest_change: ForestChangeConfig
    rasters: dict[str, RasterLayer] = Field(default_factory=dict)
    distance_to: dict[str, VectorLayer] = Field(default_factory=dict)
    # features this far beyond the grid still count for the distances (read within this margin)
    distance_margin_m: float = Field(10_000.0, ge=0)
    # null: exact distances over the whole grid (it must fit in memory); a number: distances capped there
    # (as forestatrisk's rasters effectively are), computed block by block — for regions of any size
    distance_cap_m: float | None = Field(None, gt=0)
    eco_weight: EcoWeightConfig | None = None
    # window sides (odd numbers of pixels): the share of forest and of past loss in the square window around
    # each pixel at the period's start, as input bands (forest_share_<w>px, past_loss_share_<w>px) — context
    # beyond a chip's border for the network, and the only context the per-pixel baselines get
    context_windows_px: list[int] = Field(default_factory=list)
    missing: MissingConfig = MissingConfig()
    outline: VectorLayer | None = None
    zones: ZonesConfig | None = None

    @field_validator("forest_change", mode="before")
    @classmethod
    def _format_given(cls, v):
        if isinstance(v, (str, Path)):
            raise ValueError(
                "give a mapping with its format, e.g. {format: codes, path: " f"{v}, years: [2000, 2005, 2010, "
                "2015, 2020]} (forestatrisk codes); periods are then years only (docs/formats.md)")
        return v

    @field_validator("context_windows_px")
    @classmethod
    def _odd_windows(cls, v: list[int]) -> list[int]:
        bad = [w for w in v if w < 3 or w % 2 == 0]
        if bad:
            raise ValueError(f"{bad}: a window side is an odd number of pixels ≥ 3 (centred on the pixel), "
                             "e.g. [3, 9, 33, 99]")
        if len(set(v)) != len(v):
            raise ValueError(f"{v}: each window once")
        return v

    @model_validator(mode="after")
    def _unique_bands(self) -> LayersConfig:
        from tiles.bands import band_names  # imported here: ``tiles`` pulls in rasterio and dask

        # ConfigError (a ValueError) names both layers
        band_names(self.distance_to, self.rasters, eco=self.eco_weight is not None and self.eco_weight.as_input,
                   windows_px=self.context_windows_px)
        return self

    def paths(self) -> list[Path]:
        """Every input file the layers name (relative to ``data_dir`` as given)."""
        fc = self.forest_change
        files = {
            "codes": lambda: [fc.path], "prodes": lambda: [fc.path],
            "yearly_masks": lambda: list((fc.files or {}).values()) or [fc.path],
            "hansen": lambda: [fc.lossyear, fc.treecover2000],
            "loss_masks": lambda: [fc.forest.path, *(m.path for m in fc.loss)],
        }[fc.format]()
        files += [r.path for r in self.rasters.values()] + [v.path for v in self.distance_to.values()]
        files += [x.path for x in (self.eco_weight, self.outline, self.zones) if getattr(x, "path", None) is not None]
        return files
