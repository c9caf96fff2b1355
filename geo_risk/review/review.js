/* geo-risk review map: legend with opacity sliders, click-to-inspect, split view, download of the
 * drawn areas of interest. Part of geo-risk (MIT licence); geo_risk/review/page.py embeds it.
 *
 * Safety: every string read from the page's JSON (zone, road and action names, layer names, notes,
 * the title) is inserted with textContent or as a DOM node, never as HTML, so an attribute such as
 * <img src=x onerror=...> stays text. Leaflet treats *string* popup and tooltip contents as HTML:
 * this file only ever hands it DOM nodes.
 */
var GeoRiskReview = (function () {
  "use strict";

  function el(tag, cls, text, parent) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (parent) parent.appendChild(e);
    return e;
  }

  function bytes(b64) {
    var bin = atob(b64), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  function typed(dtype, b64) {  // little-endian arrays written by geo_risk/review/rasters.py
    var b = bytes(b64);
    if (dtype === "f32") return new Float32Array(b.buffer);
    if (dtype === "u32") return new Uint32Array(b.buffer);
    return b;
  }

  function stop(node) {  // clicks, drags and wheel inside a control stay there
    L.DomEvent.disableClickPropagation(node);
    L.DomEvent.disableScrollPropagation(node);
  }

  // ------------------------------------------------------------------ click-to-inspect

  function Inspector(spec) {
    this.spec = spec;
    var n = spec.width * spec.height, mask = bytes(spec.mask), k = 0;
    this.index = new Int32Array(n);
    for (var c = 0; c < n; c++) this.index[c] = (mask[c >> 3] >> (c & 7)) & 1 ? k++ : -1;
    this.layers = spec.layers.map(function (l) {
      return {key: l.key, label: l.label, type: l.type, digits: l.digits, unit: l.unit, names: l.names,
              width: l.width, values: typed(l.dtype, l.data)};
    });
  }

  Inspector.prototype.cell = function (latlng) {
    var s = this.spec, p = L.CRS.EPSG3857.project(latlng);
    var j = Math.floor((p.x - s.left) / s.dx), i = Math.floor((s.top - p.y) / s.dy);
    if (i < 0 || j < 0 || i >= s.height || j >= s.width) return -1;
    return this.index[i * s.width + j];
  };

  function format(layer, v) {
    if (layer.type === "float") {
      if (!isFinite(v)) return "–";
      return v.toFixed(layer.digits) + (layer.unit ? " " + layer.unit : "");
    }
    if (layer.type === "category") return v < layer.names.length ? layer.names[v] : "–";
    if (layer.type === "pixel") {
      if (v === 4294967295) return "–";
      return "row " + Math.floor(v / layer.width) + ", column " + (v % layer.width);
    }
    return String(v);
  }

  /** [[key, label, text]] of the pixel under ``latlng``, or null where no layer has a value. */
  Inspector.prototype.lookup = function (latlng) {
    var k = this.cell(latlng);
    if (k < 0) return null;
    return this.layers.map(function (l) { return [l.key, l.label, format(l, l.values[k])]; });
  };

  // ------------------------------------------------------------------ zones

  function ringContains(ring, x, y) {
    var inside = false;
    for (var i = 0, j = ring.length - 1; i < ring.length; j = i++) {
      var xi = ring[i][0], yi = ring[i][1], xj = ring[j][0], yj = ring[j][1];
      if ((yi > y) !== (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi) inside = !inside;
    }
    return inside;
  }

  function polygonContains(rings, x, y) {
    if (!ringContains(rings[0], x, y)) return false;
    for (var h = 1; h < rings.length; h++) if (ringContains(rings[h], x, y)) return false;
    return true;
  }

  function featureContains(feature, latlng) {
    var g = feature.geometry, x = latlng.lng, y = latlng.lat;
    if (!g) return false;
    if (g.type === "Polygon") return polygonContains(g.coordinates, x, y);
    if (g.type === "MultiPolygon") return g.coordinates.some(function (p) { return polygonContains(p, x, y); });
    return false;
  }

  function rowsTable(rows, cls) {
    var t = el("table", cls);
    rows.forEach(function (r) {
      var tr = el("tr", null, null, t);
      tr.setAttribute("data-key", r[0]);
      el("th", null, r[1], tr);
      el("td", null, r[2], tr);
    });
    return t;
  }

  // ------------------------------------------------------------------ legend and opacity

  var Legend = L.Control.extend({
    options: {position: "bottomleft"},
    initialize: function (app) { this.app = app; this.signature = null; },
    onAdd: function () {
      this.div = el("div", "georisk-panel georisk-legend");
      stop(this.div);
      this.refresh(true);
      return this.div;
    },
    refresh: function (force) {
      var app = this.app, map = app.map, data = app.data;
      var shown = data.rasters.filter(function (r) { return app.layers[r.key] && map.hasLayer(app.layers[r.key]); });
      var vectors = app.vectorInfo.filter(function (v) { return map.hasLayer(app.layers[v.key]); });
      var signature = shown.map(function (r) { return r.key; }).concat(vectors.map(function (v) { return v.key; })).join(",");
      if (!force && signature === this.signature) return;
      this.signature = signature;
      var div = this.div;
      while (div.firstChild) div.removeChild(div.firstChild);
      el("div", "georisk-title", data.title, div);
      shown.forEach(function (r) {
        var layer = app.layers[r.key], sec = el("div", "georisk-section", null, div);
        sec.setAttribute("data-layer", r.key);
        var head = el("div", "georisk-section-head", null, sec);
        el("span", "georisk-name", r.name, head);
        var slider = el("input", "georisk-opacity", null, head);
        slider.type = "range"; slider.min = 0; slider.max = 100; slider.step = 5;
        slider.value = Math.round(100 * (layer.options.opacity === undefined ? 1 : layer.options.opacity));
        slider.title = "Opacity of " + r.name;
        slider.setAttribute("aria-label", slider.title);
        slider.addEventListener("input", function () { layer.setOpacity(slider.value / 100); });
        if (r.legend.subtitle) el("div", "georisk-subtitle", r.legend.subtitle, sec);
        if (r.legend.kind === "continuous") {
          var bar = el("div", "georisk-bar", null, sec);
          bar.style.background = "linear-gradient(to right, " + r.legend.stops.join(", ") + ")";
          var ticks = el("div", "georisk-ticks", null, sec);
          r.legend.ticks.forEach(function (t) { el("span", null, t, ticks); });
        } else {
          r.legend.items.forEach(function (it) {
            var row = el("div", "georisk-item", null, sec);
            el("span", "georisk-swatch", null, row).style.background = it.color;
            el("span", null, it.label, row);
          });
        }
      });
      vectors.forEach(function (v) {
        var row = el("div", "georisk-item georisk-vector", null, div);
        row.setAttribute("data-layer", v.key);
        var sw = el("span", v.kind === "point" ? "georisk-swatch georisk-point" : "georisk-swatch georisk-line", null, row);
        sw.style.borderColor = v.color;
        el("span", null, v.name, row);
      });
      if (data.note) el("div", "georisk-note", data.note, div);
      if (data.attribution) el("div", "georisk-attribution", data.attribution, div);
    }
  });

  // ------------------------------------------------------------------ split view

  function SplitView(app) {
    this.app = app; this.map = app.map; this.on = false; this.ratio = 0.5;
    this.keys = app.data.rasters.map(function (r) { return r.key; });
    this.left = app.data.split.left; this.right = app.data.split.right;
    if (this.keys.indexOf(this.right) < 0) this.right = this.keys[1] || this.keys[0];
  }

  SplitView.prototype.name = function (key) {
    var r = this.app.data.rasters.filter(function (x) { return x.key === key; })[0];
    return r ? r.name : key;
  };

  SplitView.prototype.control = function () {
    var self = this, Control = L.Control.extend({
      options: {position: "topright"},
      onAdd: function () {
        var div = el("div", "georisk-panel georisk-split-control");
        stop(div);
        var label = el("label", null, null, div), box = el("input", "georisk-split-toggle", null, label);
        box.type = "checkbox";
        el("span", null, " Split view", label);
        var row = el("div", "georisk-split-selects", null, div);
        self.selects = {};
        ["left", "right"].forEach(function (side) {
          var s = el("select", "georisk-split-" + side, null, row);
          s.title = side === "left" ? "Layer left of the divider" : "Layer right of the divider";
          self.keys.forEach(function (k) { var o = el("option", null, self.name(k), s); o.value = k; });
          s.value = self[side];
          s.addEventListener("change", function () { self[side] = s.value; if (self.on) self.show(); });
          self.selects[side] = s;
        });
        box.addEventListener("change", function () { self.enable(box.checked); });
        self.box = box;
        return div;
      }
    });
    return new Control();
  };

  SplitView.prototype.enable = function (on) {
    var map = this.map;
    this.on = on;
    if (this.box) this.box.checked = on;
    if (on) {
      if (!this.divider) this.build();
      map.getContainer().appendChild(this.divider);
      map.on("move zoom zoomend resize viewreset", this.update, this);
      this.show();
    } else {
      if (this.divider && this.divider.parentNode) this.divider.parentNode.removeChild(this.divider);
      map.off("move zoom zoomend resize viewreset", this.update, this);
      this.unclip();
    }
  };

  SplitView.prototype.show = function () {  // both chosen layers on the map, then clip
    var layers = this.app.layers;
    [this.left, this.right].forEach(function (k) { if (!this.map.hasLayer(layers[k])) this.map.addLayer(layers[k]); }, this);
    this.labels.left.textContent = "◀ " + this.name(this.left);
    this.labels.right.textContent = this.name(this.right) + " ▶";
    this.update();
  };

  SplitView.prototype.build = function () {
    var self = this, map = this.map;
    var d = this.divider = el("div", "georisk-divider");
    var handle = this.handle = el("div", "georisk-divider-handle", "⇔", d);
    handle.tabIndex = 0;
    handle.setAttribute("role", "slider");
    handle.setAttribute("aria-label", "Split view divider");
    this.labels = {left: el("div", "georisk-split-label georisk-split-label-left", "", d),
                   right: el("div", "georisk-split-label georisk-split-label-right", "", d)};
    stop(d);
    var dragging = false;
    function move(e) {
      var r = map.getContainer().getBoundingClientRect();
      self.ratio = Math.min(1, Math.max(0, (e.clientX - r.left) / r.width));
      self.update();
    }
    function end(e) {
      if (!dragging) return;
      dragging = false;
      map.dragging.enable();
      if (handle.hasPointerCapture && handle.hasPointerCapture(e.pointerId)) handle.releasePointerCapture(e.pointerId);
    }
    handle.addEventListener("pointerdown", function (e) {
      e.preventDefault(); e.stopPropagation();
      dragging = true;
      map.dragging.disable();
      if (handle.setPointerCapture) handle.setPointerCapture(e.pointerId);
    });
    handle.addEventListener("pointermove", function (e) { if (dragging) move(e); });
    handle.addEventListener("pointerup", end);
    handle.addEventListener("pointercancel", end);
    handle.addEventListener("keydown", function (e) {
      var step = {ArrowLeft: -0.02, ArrowRight: 0.02}[e.key];
      if (step) { self.ratio = Math.min(1, Math.max(0, self.ratio + step)); self.update(); e.preventDefault(); }
    });
  };

  SplitView.prototype.position = function () { return Math.round(this.map.getSize().x * this.ratio); };

  SplitView.prototype.unclip = function () {
    this.keys.forEach(function (k) { var p = this.map.getPane("georisk-" + k); if (p) p.style.clip = ""; }, this);
  };

  SplitView.prototype.update = function () {
    if (!this.on) return;
    var map = this.map, nw = map.containerPointToLayerPoint([0, 0]), se = map.containerPointToLayerPoint(map.getSize());
    var x = this.position(), cx = nw.x + x;
    this.divider.style.left = x + "px";
    this.handle.setAttribute("aria-valuenow", String(Math.round(100 * this.ratio)));
    this.unclip();
    map.getPane("georisk-" + this.left).style.clip = "rect(" + [nw.y, cx, se.y, nw.x].join("px,") + "px)";
    if (this.right !== this.left) {
      map.getPane("georisk-" + this.right).style.clip = "rect(" + [nw.y, se.x, se.y, cx].join("px,") + "px)";
    }
  };

  // ------------------------------------------------------------------ areas of interest

  function aoiCollection(drawn, source) {
    var features = [];
    drawn.getLayers().forEach(function (layer, i) {
      var f = layer.toGeoJSON(), props = {name: "AOI " + (i + 1), source: source};
      if (layer.getLatLngs && L.GeometryUtil && L.GeometryUtil.geodesicArea) {
        var ll = layer.getLatLngs();
        props.area_ha = Math.round(L.GeometryUtil.geodesicArea(L.LineUtil.isFlat(ll) ? ll : ll[0]) / 100) / 100;
      }
      f.properties = props;
      features.push(f);
    });
    return {type: "FeatureCollection", features: features};
  }

  function aoiControl(app, drawn) {
    var Control = L.Control.extend({
      options: {position: "topleft"},
      onAdd: function () {
        var div = el("div", "leaflet-bar georisk-aoi");
        stop(div);
        var a = el("a", null, "⤓", div);
        a.href = "#";
        a.setAttribute("role", "button");
        a.title = "Download the drawn areas of interest (GeoJSON)";
        var msg = el("div", "georisk-panel georisk-aoi-message", "", div);
        L.DomEvent.on(a, "click", function (e) {
          L.DomEvent.preventDefault(e);
          var fc = aoiCollection(drawn, app.data.aoi.source);
          app.lastAOI = fc;
          if (!fc.features.length) {
            msg.textContent = "Draw a polygon or a rectangle first (tools above).";
            msg.style.display = "block";
            setTimeout(function () { msg.style.display = "none"; }, 3000);
            return;
          }
          var url = URL.createObjectURL(new Blob([JSON.stringify(fc, null, 2)], {type: "application/geo+json"}));
          var link = el("a", null, null, document.body);
          link.href = url;
          link.download = app.data.aoi.filename;
          link.click();
          setTimeout(function () { URL.revokeObjectURL(url); link.remove(); }, 2000);
        });
        return div;
      }
    });
    return new Control();
  }

  // ------------------------------------------------------------------ start

  function init(map, layers, drawn, data) {
    var app = {map: map, layers: layers, data: data, drawn: drawn, busy: false, lastAOI: null};
    app.inspector = new Inspector(data.inspect);
    app.vectorInfo = data.vectors.slice();
    if (data.zones) app.vectorInfo.unshift({key: data.zones.key, name: data.zones.name, kind: "zone", color: "#222"});
    var zoneFeatures = [];
    if (data.zones && layers.zones) {
      layers.zones.eachLayer(function (l) {
        zoneFeatures.push(l.feature);
        l.bindTooltip(el("span", null, l.feature.properties.name), {sticky: true});
      });
    }
    data.vectors.forEach(function (v) {
      layers[v.key].eachLayer(function (l) {
        var p = l.feature.properties, tip = el("span");
        el("b", null, p.name || v.name, tip);
        if (p.kind) el("span", null, " (" + p.kind + ")", tip);
        l.bindTooltip(tip, {sticky: v.kind !== "point"});
      });
    });
    app.zoneAt = function (latlng) {
      for (var i = 0; i < zoneFeatures.length; i++) if (featureContains(zoneFeatures[i], latlng)) return zoneFeatures[i];
      return null;
    };

    app.legend = new Legend(app).addTo(map);
    map.on("layeradd layerremove", function () { app.legend.refresh(false); });
    app.split = new SplitView(app);
    app.split.control().addTo(map);
    if (drawn) aoiControl(app, drawn).addTo(map);

    map.on("draw:drawstart draw:editstart draw:deletestart", function () { app.busy = true; });
    map.on("draw:drawstop draw:editstop draw:deletestop", function () { setTimeout(function () { app.busy = false; }, 0); });
    map.on("click", function (e) {
      if (app.busy) return;
      var box = el("div", "georisk-popup"), rows = app.inspector.lookup(e.latlng);
      if (rows) {
        el("div", "georisk-popup-title", "This pixel", box);
        box.appendChild(rowsTable(rows, "georisk-inspect"));
      } else {
        el("div", "georisk-popup-title", "No forest pixel here", box);
        el("div", "georisk-muted", "Risk, decision and cost exist on forest at the start of the period.", box);
      }
      var zone = app.zoneAt(e.latlng);
      if (zone) {
        var z = el("div", "georisk-zone", null, box);
        el("div", "georisk-popup-title", "Zone: " + zone.properties.name, z);
        var audit = (data.zones.audit || {})[String(zone.properties.zone_id)] || [];
        z.appendChild(rowsTable([["zone_id", "Zone id", String(zone.properties.zone_id)]].concat(
          audit.map(function (r, i) { return ["audit" + i, r[0], r[1]]; })), "georisk-audit"));
      }
      el("div", "georisk-muted", "lat " + e.latlng.lat.toFixed(5) + ", lon " + e.latlng.lng.toFixed(5), box);
      app.popup = L.popup({maxWidth: 380}).setLatLng(e.latlng).setContent(box).openOn(map);
    });
    GeoRiskReview.app = app;
    return app;
  }

  return {init: init, format: format, featureContains: featureContains, app: null};
})();
