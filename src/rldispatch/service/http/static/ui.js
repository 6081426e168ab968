// The dispatcher's page: asks for an API token, polls /ui/state with it, draws the fleet.
(function () {
  "use strict";

  const settings = JSON.parse(document.body.dataset.settings);
  const TOKEN_KEY = "rldispatch.token";
  const PALETTE = [
    "#1f77b4", "#e8590c", "#2f9e44", "#c2255c", "#7048e8", "#0c8599", "#a0522d",
    "#5c7cfa", "#d6336c", "#37b24d", "#f59f00", "#495057", "#15aabf", "#ae3ec9",
  ];
  const $ = (id) => document.getElementById(id);

  let token = null;
  let map = null;
  let layers = null;
  let drawnSequence = null;
  let fitted = false;
  let timer = null;
  let selectedDriver = null;
  let lastState = null;
  let tilesLoaded = 0;
  let tileErrors = 0;
  let polls = 0;

  // --- small helpers -------------------------------------------------------------------------

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "text") node.textContent = value;
      else if (key === "className") node.className = value;
      else if (key === "style") node.setAttribute("style", value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children || []) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  }

  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, (c) => ({
      "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
    })[c]);
  }

  function clockAt(minuteOfDay) {
    if (minuteOfDay === null || minuteOfDay === undefined) return "–";
    const total = ((Math.round(minuteOfDay) % 1440) + 1440) % 1440;
    return String(Math.floor(total / 60)).padStart(2, "0") + ":" + String(total % 60).padStart(2, "0");
  }

  function inMinutes(fleet, minutes) {
    return minutes === null || minutes === undefined ? "–" : clockAt(fleet.minute_of_day + minutes);
  }

  function fmt(value, digits) {
    if (value === null || value === undefined) return "–";
    return Number(value).toFixed(digits === undefined ? 1 : digits);
  }

  function percent(value) {
    return value === null || value === undefined ? "–" : (100 * value).toFixed(1) + " %";
  }

  function colourOf(index) {
    return PALETTE[index % PALETTE.length];
  }

  function whoAnswered(item) {
    const parts = [];
    if (item.source === "rl") {
      parts.push(el("span", { className: "tag rl", text: "RL " + (item.model_version || "") }));
    } else {
      parts.push(el("span", { className: "tag fallback", text: "fallback" }));
      if (item.reason) parts.push(el("span", { className: "tag reason", text: item.reason }));
    }
    if (item.lookahead) parts.push(el("span", { className: "tag look", text: "lookahead" }));
    if (item.late) parts.push(el("span", { className: "tag late", text: "late" }));
    return parts;
  }

  // --- token ---------------------------------------------------------------------------------

  function showLogin(message) {
    if (timer) clearTimeout(timer);
    timer = null;
    $("app").hidden = true;
    $("login").hidden = false;
    $("sign-out").hidden = true;
    $("viewer").textContent = "";
    $("login-error").textContent = message || "";
    $("token-input").focus();
  }

  function start(newToken) {
    token = newToken;
    sessionStorage.setItem(TOKEN_KEY, token);
    $("login").hidden = true;
    $("app").hidden = false;
    $("sign-out").hidden = false;
    ensureMap();
    poll();
  }

  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("token-input").value.trim();
    $("token-input").value = "";
    if (value) start(value);
  });

  $("sign-out").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    token = null;
    showLogin("");
  });

  // --- polling -------------------------------------------------------------------------------

  async function poll() {
    if (!token) return;
    try {
      const response = await fetch("/ui/state", {
        headers: { Authorization: "Bearer " + token },
        cache: "no-store",
      });
      if (response.status === 401) {
        sessionStorage.removeItem(TOKEN_KEY);
        token = null;
        showLogin("The service refused this token.");
        return;
      }
      if (!response.ok) throw new Error("HTTP " + response.status);
      const state = await response.json();
      polls += 1;
      document.body.dataset.polls = String(polls);
      render(state);
      $("updated").className = "pill muted";
      $("updated").textContent = "updated " + new Date().toLocaleTimeString([], { hour12: false });
    } catch (error) {
      $("updated").className = "pill stale";
      $("updated").textContent = "service not answering (" + error.message + ")";
    }
    if (token) timer = setTimeout(poll, settings.pollIntervalMs);
  }

  // --- map -----------------------------------------------------------------------------------

  function ensureMap() {
    if (map) return;
    map = L.map("map", { zoomControl: true, preferCanvas: false }).setView([46.2044, 6.1432], 12);
    if (settings.tileUrl) {
      const tiles = L.tileLayer(settings.tileUrl, {
        maxZoom: 19,
        attribution: settings.tileAttribution,
        crossOrigin: true,
      });
      tiles.on("tileload", () => {
        tilesLoaded += 1;
        $("basemap-note").hidden = true;
      });
      tiles.on("tileerror", () => {
        tileErrors += 1;
        if (tilesLoaded === 0) {
          $("basemap-note").textContent = "Basemap tiles do not load here: the fleet is drawn without them.";
          $("basemap-note").hidden = false;
        }
      });
      tiles.addTo(map);
    } else {
      $("basemap-note").textContent = "No basemap configured (serve --tile-url).";
      $("basemap-note").hidden = false;
    }
    layers = {
      routes: L.layerGroup().addTo(map),
      open: L.layerGroup().addTo(map),
      stops: L.layerGroup().addTo(map),
      drivers: L.layerGroup().addTo(map),
    };
    $("fit").addEventListener("click", () => fitToFleet(lastState && lastState.fleet));
    $("map").addEventListener("click", (event) => {
      const chip = event.target.closest(".drv");
      if (chip) selectDriver(chip.dataset.driverId);
    });
  }

  function fitToFleet(fleet) {
    if (!fleet) return;
    const points = [];
    for (const driver of fleet.drivers) {
      points.push(driver.position);
      for (const stop of driver.stops) points.push(stop.at);
    }
    for (const booking of fleet.open_bookings) points.push(booking.pickup);
    map.invalidateSize();
    if (points.length) map.fitBounds(L.latLngBounds(points).pad(0.08), { maxZoom: 15 });
  }

  function stopTooltip(fleet, driver, stop) {
    const lines = [
      "<b>" + escapeHtml(stop.kind === "pickup" ? "pickup " : "drop-off ") + escapeHtml(stop.booking_id) + "</b>",
      "driver " + escapeHtml(driver.id) + (stop.onboard ? " (on board)" : ""),
      "at " + inMinutes(fleet, stop.eta_in_min),
    ];
    if (stop.kind === "pickup") {
      lines.push("requested " + inMinutes(fleet, stop.requested_in_min));
      if (stop.late) lines.push('<span style="color:#d7263d">late by ' + fmt(stop.late_by_min) + " min</span>");
      else if (stop.at_risk) lines.push('<span style="color:#f08c00">at risk: ' + fmt(stop.late_by_min) + " min after the requested time</span>");
    }
    if (stop.new) lines.push("placed by the last answer");
    return lines.join("<br>");
  }

  function drawFleet(fleet) {
    for (const group of Object.values(layers)) group.clearLayers();
    if (!fleet) return;
    fleet.drivers.forEach((driver, index) => {
      const colour = colourOf(index);
      const dim = selectedDriver && selectedDriver !== driver.id;
      const opacity = dim ? 0.18 : 0.85;
      const path = [driver.position].concat(driver.stops.map((stop) => stop.at));
      if (path.length > 1) {
        L.polyline(path, { color: colour, weight: dim ? 2 : 3.5, opacity, className: "route" })
          .addTo(layers.routes);
      }
      for (const stop of driver.stops) {
        const ring = stop.late ? "#d7263d" : stop.at_risk ? "#f08c00" : null;
        if (stop.kind === "pickup") {
          if (ring) {
            L.circleMarker(stop.at, {
              radius: 11, color: ring, weight: 3, fill: false, opacity: dim ? 0.3 : 1,
              className: stop.late ? "stop-late" : "stop-risk",
            }).addTo(layers.stops);
          }
          L.circleMarker(stop.at, {
            radius: 6, color: colour, weight: 2.5, fillColor: "#fff", fillOpacity: 1,
            opacity: dim ? 0.3 : 1, dashArray: stop.new ? "3 2" : null,
            className: "stop-pickup",
          }).bindTooltip(stopTooltip(fleet, driver, stop)).addTo(layers.stops);
        } else {
          L.circleMarker(stop.at, {
            radius: 4, color: colour, weight: 1, fillColor: colour, fillOpacity: dim ? 0.3 : 0.9,
            opacity: dim ? 0.3 : 1, className: "stop-dropoff",
          }).bindTooltip(stopTooltip(fleet, driver, stop)).addTo(layers.stops);
        }
      }
    });
    drawDriverMarkers(fleet);
    for (const booking of fleet.open_bookings) {
      const kind = booking.late ? " late" : booking.at_risk ? " risk" : "";
      if (booking.late || booking.at_risk || booking.asked) {
        L.polyline([booking.pickup, booking.dropoff], {
          color: booking.late ? "#d7263d" : booking.at_risk ? "#f08c00" : "#2b6cb0",
          weight: 1.5, opacity: 0.7, dashArray: "4 4", className: "open-leg",
        }).addTo(layers.open);
      }
      const icon = L.divIcon({
        className: "",
        html: '<div class="open-bk' + kind + (booking.asked ? " asked" : "") +
          '" data-booking-id="' + escapeHtml(booking.id) + '"></div>',
        iconSize: [12, 12],
        iconAnchor: [8, 8],
      });
      L.marker(booking.pickup, { icon })
        .bindTooltip(
          "<b>open " + escapeHtml(booking.id) + "</b>" + (booking.priority ? " (urgent)" : "") +
          "<br>requested " + inMinutes(fleet, booking.requested_in_min) +
          "<br>window closes " + inMinutes(fleet, booking.window_closes_in_min) +
          (booking.late ? '<br><span style="color:#d7263d">late already</span>' : "") +
          (booking.at_risk ? '<br><span style="color:#f08c00">at risk: window closes soon</span>' : ""),
        )
        .addTo(layers.open);
    }
  }

  // Drivers at the same place (a depot) share one marker: a column of their labels.
  function drawDriverMarkers(fleet) {
    const groups = new Map();
    fleet.drivers.forEach((driver, index) => {
      const key = driver.position[0].toFixed(4) + "," + driver.position[1].toFixed(4);
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key).push([driver, index]);
    });
    for (const members of groups.values()) {
      const chips = members.map(([driver, index]) => {
        const late = driver.stops.filter((stop) => stop.late).length;
        const classes = ["drv"];
        if (selectedDriver === driver.id) classes.push("selected");
        if (!driver.on_shift) classes.push("off-shift");
        if (selectedDriver && selectedDriver !== driver.id) classes.push("dim");
        return '<div class="' + classes.join(" ") + '" data-driver-id="' + escapeHtml(driver.id) +
          '" style="background:' + colourOf(index) + '">' + escapeHtml(driver.id) +
          (late ? ' <span class="drv-late">' + late + " late</span>" : "") + "</div>";
      });
      const icon = L.divIcon({
        className: "",
        html: '<div class="drv-stack">' + chips.join("") + "</div>",
        iconSize: null,
      });
      const tooltip = members.map(([driver]) => {
        const pickups = driver.stops.filter((stop) => stop.kind === "pickup").length;
        const shift = driver.on_shift
          ? "on shift until " + inMinutes(fleet, driver.shift_ends_in_min)
          : "shift " + inMinutes(fleet, driver.shift_starts_in_min) + "–" + inMinutes(fleet, driver.shift_ends_in_min);
        return "<b>" + escapeHtml(driver.id) + "</b> free at " + inMinutes(fleet, Math.max(driver.free_in_min, 0)) +
          ", " + pickups + " pickups planned, " + shift;
      }).join("<br>");
      L.marker(members[0][0].position, { icon, zIndexOffset: 1000 })
        .bindTooltip(tooltip)
        .addTo(layers.drivers);
    }
  }

  function selectDriver(id) {
    selectedDriver = selectedDriver === id ? null : id;
    if (lastState) {
      drawFleet(lastState.fleet);
      renderFleetTable(lastState.fleet);
    }
  }

  // --- panels --------------------------------------------------------------------------------

  function renderHeader(state) {
    const fleet = state.fleet;
    $("clock").textContent = fleet ? fleet.clock : "--:--";
    const sw = state.switch;
    const pill = $("rl-pill");
    if (sw.shadow) {
      pill.className = "pill shadow";
      pill.textContent = "shadow mode";
    } else if (sw.enabled) {
      pill.className = "pill on";
      pill.textContent = "RL on · " + Math.round(sw.ab_ratio * 100) + " % to RL";
    } else {
      pill.className = "pill off";
      pill.textContent = "RL off · fallback " + state.fallback_policy;
    }
    const model = state.model;
    $("model-pill").textContent = model.loaded
      ? "model " + model.version + " (" + model.kind + (state.lookahead ? ", lookahead " + state.lookahead.candidates : "") + ")"
      : "no model: fallback only";
    $("viewer").textContent = state.viewer.name + (state.viewer.admin ? " · admin" : " · read");
  }

  function renderKpis(fleet) {
    const counts = fleet ? fleet.counts : null;
    $("kpi-drivers").textContent = counts ? counts.drivers : "–";
    $("kpi-busy").textContent = counts ? counts.drivers_with_plan : "–";
    $("kpi-planned").textContent = counts ? counts.planned_pickups : "–";
    $("kpi-open").textContent = counts ? counts.open_bookings : "–";
    $("kpi-late").textContent = counts ? counts.late : "–";
    $("kpi-risk").textContent = counts ? counts.at_risk : "–";
    const line = $("last-answer");
    line.replaceChildren();
    if (!fleet) {
      line.textContent = "No answer yet.";
      return;
    }
    const answer = fleet.answer;
    const placed = answer.placed.length;
    line.append(
      el("span", { text: (fleet.kind === "round" ? "Round" : "Suggestion") + " at " + fleet.clock + ": " }),
      ...whoAnswered({ ...answer, lookahead: false }),
      el("span", {
        text: placed + (placed === 1 ? " booking placed" : " bookings placed") +
          (answer.ended ? ", then " + answer.ended.replaceAll("_", " ") : "") +
          " · " + fmt(answer.latency_ms) + " ms",
      }),
    );
  }

  function renderFleetTable(fleet) {
    const body = $("fleet-table").querySelector("tbody");
    body.replaceChildren();
    $("fleet-empty").hidden = Boolean(fleet);
    $("fleet-note").textContent = fleet
      ? "state of " + fleet.clock + ", received " + new Date(fleet.received_at).toLocaleTimeString([], { hour12: false }) +
        (fleet.origin === "log" ? " by another worker (read from the decision log)" : "")
      : "";
    if (!fleet) return;
    fleet.drivers.forEach((driver, index) => {
      const pickups = driver.stops.filter((stop) => stop.kind === "pickup");
      const next = pickups[0];
      const late = pickups.filter((stop) => stop.late).length;
      const risk = pickups.filter((stop) => stop.at_risk).length;
      const row = el("tr", {
        "data-driver-id": driver.id,
        className: selectedDriver === driver.id ? "selected" : null,
      }, [
        el("td", {}, [el("span", { className: "swatch", style: "background:" + colourOf(index) })]),
        el("td", { text: driver.id }),
        el("td", { text: inMinutes(fleet, Math.max(driver.free_in_min, 0)) }),
        el("td", {
          className: driver.on_shift ? null : "off-shift",
          text: inMinutes(fleet, driver.shift_starts_in_min) + "–" + inMinutes(fleet, driver.shift_ends_in_min),
        }),
        el("td", { text: String(pickups.length) }),
        el("td", { text: next ? next.booking_id + " · " + inMinutes(fleet, next.eta_in_min) : "–" }),
        el("td", { className: late ? "count-late" : null, text: String(late) }),
        el("td", { className: risk ? "count-risk" : null, text: String(risk) }),
        el("td", { text: String(driver.rides_today) }),
      ]);
      row.addEventListener("click", () => selectDriver(driver.id));
      body.append(row);
    });
  }

  function renderSwitch(state) {
    const sw = state.switch;
    const readonly = $("switch-readonly");
    readonly.replaceChildren(
      el("span", { className: "tag " + (sw.enabled ? "rl" : "fallback"), text: sw.enabled ? "RL on" : "RL off" }),
      el("span", { text: "A/B share to RL " + Math.round(sw.ab_ratio * 100) + " %" + (sw.shadow ? " · shadow mode" : "") }),
    );
    $("switch-note").textContent = sw.updated_by ? "v" + sw.version + " by " + sw.updated_by : "";
    const panel = $("admin-panel");
    if (!state.viewer.admin) {
      panel.hidden = true;
      $("switch-message").className = "message";
      if (!$("switch-message").dataset.sticky) $("switch-message").textContent = "Switching RL needs an admin token.";
      return;
    }
    const wasHidden = panel.hidden;
    panel.hidden = false;
    if (wasHidden || panel.dataset.version !== String(sw.version)) {
      if (!panel.contains(document.activeElement) || wasHidden) {
        $("rl-enabled").checked = sw.enabled;
        $("rl-shadow").checked = sw.shadow;
        $("ab-ratio").value = String(Math.round(sw.ab_ratio * 100));
        $("ab-ratio-out").textContent = $("ab-ratio").value + " %";
        panel.dataset.version = String(sw.version);
      }
    }
  }

  $("ab-ratio").addEventListener("input", () => {
    $("ab-ratio-out").textContent = $("ab-ratio").value + " %";
  });

  $("admin-panel").addEventListener("submit", async (event) => {
    event.preventDefault();
    const message = $("switch-message");
    const body = {
      enabled: $("rl-enabled").checked,
      shadow: $("rl-shadow").checked,
      ab_ratio: Number($("ab-ratio").value) / 100,
    };
    try {
      const response = await fetch("/rl/toggle", {
        method: "POST",
        headers: { Authorization: "Bearer " + token, "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      const answer = await response.json().catch(() => ({}));
      if (response.ok) {
        message.className = "message ok";
        message.textContent = "Saved: RL " + (answer.enabled ? "on" : "off") + ", " +
          Math.round(answer.ab_ratio * 100) + " % to RL" + (answer.shadow ? ", shadow mode" : "") +
          " (version " + answer.version + ")";
        $("admin-panel").dataset.version = "";
      } else {
        message.className = "message bad";
        message.textContent = "Refused (" + response.status + "): " + (answer.detail || answer.message || "");
      }
    } catch (error) {
      message.className = "message bad";
      message.textContent = "Not saved: " + error.message;
    }
    message.dataset.sticky = "1";
    poll.now && poll.now();
  });

  function renderToday(state) {
    const body = $("today-table").querySelector("tbody");
    body.replaceChildren();
    if (!state.today) {
      $("today-note").textContent = state.error || "";
      return;
    }
    const rl = state.today.sides.rl;
    const fb = state.today.sides.heuristic;
    const rows = [
      ["decisions", rl.decisions, fb.decisions],
      ["bookings", rl.bookings, fb.bookings],
      ["outcomes reported", rl.outcomes, fb.outcomes],
      ["late pickups", percent(rl.late_rate), percent(fb.late_rate)],
      ["mean pickup delay", fmt(rl.mean_pickup_delay_min) + " min", fmt(fb.mean_pickup_delay_min) + " min"],
      ["mean km per ride", fmt(rl.mean_distance_km) + " km", fmt(fb.mean_distance_km) + " km"],
    ];
    for (const [name, a, b] of rows) {
      body.append(el("tr", {}, [el("td", { text: name }), el("td", { text: String(a) }), el("td", { text: String(b) })]));
    }
    const log = state.log;
    $("today-note").textContent = "Since " + new Date(state.today.since).toLocaleString([], { hour12: false }) +
      (log ? " · log: " + log.suggestions + " decisions, " + log.outcomes + " outcomes" : "");
  }

  function renderAnswers(state) {
    const answers = state.answers;
    let rl = 0;
    let fb = 0;
    for (const [kind, row] of [["rounds", "lat-rounds"], ["suggestions", "lat-suggestions"]]) {
      const figures = answers[kind];
      const byRl = figures.by_source.rl || 0;
      rl += byRl;
      fb += figures.by_source.fallback || 0;
      const cells = $(row).querySelectorAll("td");
      cells[1].textContent = String(figures.count);
      cells[2].textContent = figures.count ? percent(byRl / figures.count) : "–";
      cells[3].textContent = fmt(figures.latency_ms.p50);
      cells[4].textContent = fmt(figures.latency_ms.p95);
      cells[5].textContent = fmt(figures.latency_ms.p99);
    }
    const total = rl + fb;
    const bar = $("source-bar");
    bar.querySelector(".rl").style.width = total ? (100 * rl / total) + "%" : "0";
    bar.querySelector(".fb").style.width = total ? (100 * fb / total) + "%" : "0";
    $("source-line").textContent = total
      ? rl + " answered by RL, " + fb + " by the fallback" + (answers.errors ? ", " + answers.errors + " model errors" : "")
      : "No answers yet.";
    $("answers-note").textContent = "worker " + state.worker_pid + ", since it started";
    const list = $("fallback-reasons");
    list.replaceChildren();
    const reasons = Object.entries(answers.fallbacks).filter(([, count]) => count > 0)
      .sort((a, b) => b[1] - a[1]);
    for (const [reason, count] of reasons) {
      list.append(el("li", { text: reason.replaceAll("_", " ") + ": " + count }));
    }
  }

  function renderDecisions(state) {
    const body = $("decisions").querySelector("tbody");
    body.replaceChildren();
    for (const item of state.decisions.slice(0, 25)) {
      const when = new Date(item.at).toLocaleTimeString([], { hour12: false });
      const booking = item.booking_id || (item.kind === "round" ? "(round: nothing placed)" : "–");
      body.append(el("tr", { className: item.source === "rl" ? "rl" : "fallback", "data-booking-id": item.booking_id }, [
        el("td", { text: when }),
        el("td", { text: booking }),
        el("td", { text: item.driver_id || "–" }),
        el("td", {}, whoAnswered(item)),
        el("td", { text: fmt(item.latency_ms) }),
      ]));
    }
  }

  function render(state) {
    lastState = state;
    renderHeader(state);
    renderKpis(state.fleet);
    renderSwitch(state);
    renderToday(state);
    renderAnswers(state);
    renderDecisions(state);
    const sequence = state.fleet ? state.fleet.sequence : null;
    const key = state.fleet ? state.fleet.origin + ":" + sequence : null;
    if (key !== drawnSequence) {
      drawnSequence = key;
      renderFleetTable(state.fleet);
      drawFleet(state.fleet);
      if (state.fleet && !fitted) {
        fitToFleet(state.fleet);
        fitted = true;
      }
      document.body.dataset.sequence = sequence === null ? "" : String(sequence);
      document.body.dataset.origin = state.fleet ? state.fleet.origin : "";
    }
  }

  poll.now = () => {
    if (timer) clearTimeout(timer);
    poll();
  };

  // --- start ---------------------------------------------------------------------------------

  const fromFragment = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromFragment) history.replaceState(null, "", location.pathname + location.search);
  const saved = fromFragment || sessionStorage.getItem(TOKEN_KEY);
  if (saved) start(saved);
  else showLogin("");
})();
