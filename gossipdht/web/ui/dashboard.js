// gossipdht dashboard: polls the node's JSON endpoints and draws the cluster.  Plain
// script, no library: the ring and the charts are SVG built here.
"use strict";

const REFRESH_MS = 1500;
const SLICES = 720; // arcs of the ring drawn: half a degree each
const TOKEN_KEY = "gossipdht-token";
const SVG = "http://www.w3.org/2000/svg";
const OPERATIONS = ["get", "put", "delete", "bulk_put", "other"];
const WRITES = ["put", "delete", "bulk_put"];

const view = { ring: null, ringDrawn: null, keyShown: null, activity: null, colours: new Map() };

// -- fetching ------------------------------------------------------------------------

class Unauthorized extends Error {}

async function getJSON(path) {
  const headers = { Accept: "application/json" };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = "Bearer " + token;
  const response = await fetch(path, { headers, cache: "no-store" });
  if (response.status === 401) throw new Unauthorized((await response.text()).trim());
  if (!response.ok) throw new Error(path + " answered " + response.status + ": " + (await response.text()).trim());
  return { body: await response.json(), headers: response.headers };
}

async function refresh() {
  try {
    const [members, ring, activity, transfers] = await Promise.all([
      getJSON("dht/members"), getJSON("dht/ring?slices=" + SLICES),
      getJSON("dht/activity?cluster=1"), getJSON("dht/transfers?cluster=1&format=json"),
    ]);
    document.getElementById("token-form").hidden = true;
    draw(members.body, ring.body, activity.body, transfers.body);
    await showKey(false);
    setStatus("updated " + new Date().toLocaleTimeString(), false);
  } catch (error) {
    if (error instanceof Unauthorized) {
      document.getElementById("token-form").hidden = false;
      setStatus(error.message, true);
    } else {
      setStatus(String(error.message || error), true);
    }
  } finally {
    setTimeout(refresh, REFRESH_MS);
  }
}

function setStatus(text, stale) {
  const status = document.getElementById("status");
  status.textContent = text;
  status.classList.toggle("stale", stale);
}

// -- helpers ---------------------------------------------------------------------------

function element(tag, attributes = {}, ...children) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== undefined && value !== null) node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
}

// Each member keeps its colour while the page is open: hues a golden angle apart, so
// neighbours in the list differ, in two lightnesses once there are many.
function colour(name) {
  if (!view.colours.has(name)) {
    const i = view.colours.size;
    view.colours.set(name, `hsl(${Math.round((i * 137.508) % 360)}, 62%, ${i % 2 ? 40 : 52}%)`);
  }
  return view.colours.get(name);
}

function swatch(name) {
  return element("span", { class: "swatch", style: "background:" + colour(name) });
}

function duration(seconds) {
  if (seconds < 60) return seconds.toFixed(seconds < 10 ? 1 : 0) + " s";
  if (seconds < 3600) return Math.floor(seconds / 60) + " min " + Math.floor(seconds % 60) + " s";
  if (seconds < 86400) return Math.floor(seconds / 3600) + " h " + Math.floor((seconds % 3600) / 60) + " min";
  return Math.floor(seconds / 86400) + " d";
}

function rate(value) {
  return value === undefined ? "–" : value.toFixed(value < 10 ? 1 : 0);
}

// The last completed step's rate of the operations ``names``.
function lastRate(report, names) {
  if (!report || !report.requests) return undefined;
  let sum = 0;
  for (const name of names) {
    const series = report.requests.operations[name];
    if (series) sum += series.rate[series.rate.length - 1] || 0;
  }
  return sum;
}

// -- drawing ---------------------------------------------------------------------------

function draw(members, ring, activity, transfers) {
  view.ring = ring;
  const self = activity[0].node;
  document.getElementById("node").textContent = "node " + self;
  document.getElementById("checksum").textContent = "ring " + ring.checksum + " · N=" + ring.replicas +
    " · " + ring.vnodes + " tokens a member";
  for (const name of [...ring.members.map((m) => m.name), ...members.map((m) => m.name)].sort()) colour(name);
  if (view.ringDrawn !== ring.checksum) drawRing(ring);
  drawMembers(members, ring, activity, self);
  drawCharts(activity);
  drawTransfers(transfers);
}

function point(fraction, radius) {
  const angle = 2 * Math.PI * fraction - Math.PI / 2; // token 0 at the top, clockwise
  return [radius * Math.cos(angle), radius * Math.sin(angle)];
}

// An annulus sector from ``start`` to ``end`` (fractions of the ring, end - start < 1).
function sector(start, end, outer, inner) {
  const large = end - start > 0.5 ? 1 : 0;
  const [x0, y0] = point(start, outer), [x1, y1] = point(end, outer);
  const [x2, y2] = point(end, inner), [x3, y3] = point(start, inner);
  const f = (n) => n.toFixed(3);
  return `M${f(x0)} ${f(y0)}A${outer} ${outer} 0 ${large} 1 ${f(x1)} ${f(y1)}` +
    `L${f(x2)} ${f(y2)}A${inner} ${inner} 0 ${large} 0 ${f(x3)} ${f(y3)}Z`;
}

// Runs of neighbouring slices of one owner, each at most half the ring (an arc of a
// whole circle has no SVG path).
function runs(slices) {
  const found = [];
  for (let i = 0; i < slices.length; i++) {
    const last = found[found.length - 1];
    if (last && last.owner === slices[i] && i - last.start < slices.length / 2) last.end = i + 1;
    else found.push({ owner: slices[i], start: i, end: i + 1 });
  }
  return found;
}

function drawRing(ring) {
  const svg = document.getElementById("ring");
  svg.replaceChildren();
  const names = ring.members.map((m) => m.name);
  const n = ring.slices.length;
  const tokens = element("svg:g", { class: "tokens" });
  for (const run of runs(ring.slices)) {
    const name = names[run.owner];
    tokens.append(element("svg:path", { class: "arc", "data-member": name, fill: colour(name),
                                        d: sector(run.start / n, run.end / n, 112, 90) },
                          element("svg:title", {}, name)));
  }
  // Inside, each member's share of the key space as one piece, in ring order of names.
  const shares = element("svg:g", { class: "shares" });
  let at = 0;
  for (const member of ring.members) {
    for (let part = 0; part < member.share; part += 0.5) { // a share over half a ring in two pieces
      const size = Math.min(0.5, member.share - part);
      shares.append(element("svg:path", { class: "share", "data-member": member.name, fill: colour(member.name),
                                          d: sector(at, at + size, 84, 62) },
                            element("svg:title", {}, `${member.name}: ${(member.share * 100).toFixed(1)} %`)));
      at += size;
    }
  }
  svg.append(tokens, shares,
             element("svg:text", { y: -4 }, `${names.length} member${names.length === 1 ? "" : "s"}`),
             element("svg:text", { y: 9 }, "outside: tokens"),
             element("svg:text", { y: 20 }, "inside: shares"),
             element("svg:g", { id: "marker" }));
  view.ringDrawn = ring.checksum;
  view.keyShown = null; // the marker is redrawn on the new ring
}

function drawMembers(members, ring, activity, self) {
  const reports = new Map(activity.map((r) => [r.node, r]));
  const shares = new Map(ring.members.map((m) => [m.name, m.share]));
  const order = { alive: 0, suspect: 1, dead: 2, left: 3 };
  const counts = {};
  const rows = [...members].sort((a, b) => a.name.localeCompare(b.name)).map((m) => {
    counts[m.state] = (counts[m.state] || 0) + 1;
    const report = reports.get(m.name);
    const held = report && !report.unreachable ? report.keys_held : undefined;
    return element("tr", { "data-member": m.name, "data-state": m.state, class: m.name === self ? "self" : null },
      element("td", {}, swatch(m.name)),
      element("td", { class: "mono" }, m.name),
      element("td", { class: "mono" }, `${m.address}:${m.port}`),
      element("td", {}, element("span", { class: "state state-" + m.state }, m.state)),
      element("td", { class: "num" }, String(m.incarnation)),
      element("td", { class: "num" }, duration(m.since_seconds)),
      element("td", { class: "num" }, shares.has(m.name) ? (shares.get(m.name) * 100).toFixed(1) + " %" : "–"),
      element("td", { class: "num" }, held === undefined ? "–" : held.toLocaleString()),
      element("td", { class: "num" }, rate(lastRate(report, ["get"]))),
      element("td", { class: "num" }, rate(lastRate(report, WRITES))));
  });
  document.querySelector("#members tbody").replaceChildren(...rows);
  document.getElementById("member-counts").textContent = Object.keys(order).filter((s) => counts[s])
    .map((s) => `${counts[s]} ${s}`).join(" · ");
}

// -- charts ------------------------------------------------------------------------------

function drawCharts(activity) {
  view.activity = activity;
  const select = document.getElementById("chart-node");
  const known = new Set([...select.options].map((o) => o.value));
  for (const report of activity) {
    if (!known.has(report.node)) select.append(element("option", { value: report.node }, report.node));
  }
  const chosen = activity.filter((r) => !r.unreachable && r.requests && (!select.value || r.node === select.value));
  const note = document.getElementById("chart-note");
  const charts = document.getElementById("charts");
  if (!chosen.length) {
    note.textContent = "no request counts: the node runs with --metrics false, or did not answer";
    charts.replaceChildren();
    return;
  }
  const step = chosen[0].requests.step_seconds;
  note.textContent = `one point each ${step} s; ` + (chosen.length > 1
    ? "rates added up over the members, p50 and p99 those of the slowest member in each step"
    : "p50 and p99 of this member");
  const figures = [];
  for (const operation of OPERATIONS) {
    const series = chosen.map((r) => r.requests.operations[operation]).filter(Boolean);
    if (!series.length) continue;
    const length = series[0].rate.length;
    const rates = [...Array(length).keys()].map((i) => series.reduce((sum, s) => sum + s.rate[i], 0));
    if (!rates.some((r) => r > 0) && operation !== "get" && operation !== "put") continue;
    const worst = (field) => [...Array(length).keys()].map((i) => {
      const values = series.map((s) => s[field][i]).filter((v) => v !== null);
      return values.length ? Math.max(...values) : null;
    });
    figures.push(chart(operation, rates, worst("p50_ms"), worst("p99_ms")));
  }
  charts.replaceChildren(...figures);
}

function chart(operation, rates, p50, p99) {
  const latest = (values) => [...values].reverse().find((v) => v !== null && v !== undefined);
  const maxRate = Math.max(1, ...rates);
  const maxMs = Math.max(1, ...p99.filter((v) => v !== null));
  return element("div", { class: "chart", "data-operation": operation, "data-rate": latest(rates) || 0 },
    element("h3", {}, operation),
    element("div", { class: "legend" },
      element("span", { class: "rate" }, "req/s "), `${rate(latest(rates) || 0)} (max ${rate(maxRate)})`),
    plot([[rates, "rate"]], maxRate),
    element("div", { class: "legend" },
      element("span", { class: "p50" }, "p50 "), `${fmtMs(latest(p50))} · `,
      element("span", { class: "p99" }, "p99 "), `${fmtMs(latest(p99))} (max ${fmtMs(maxMs)})`),
    plot([[p50, "p50"], [p99, "p99"]], maxMs));
}

function fmtMs(value) {
  return value === undefined || value === null ? "–" : (value < 10 ? value.toFixed(2) : value.toFixed(0)) + " ms";
}

// Lines of ``series`` (values or null for no request) scaled to ``max``, on a 100 x 40 box.
function plot(series, max) {
  const svg = element("svg:svg", { viewBox: "0 0 100 40", preserveAspectRatio: "none" });
  for (const [values, kind] of series) {
    let points = [];
    const flush = () => {
      if (points.length) svg.append(element("svg:polyline", { class: kind, points: points.join(" ") }));
      points = [];
    };
    values.forEach((value, i) => {
      if (value === null || value === undefined) return flush();
      const x = values.length > 1 ? (100 * i) / (values.length - 1) : 50;
      points.push(`${x.toFixed(2)},${(39 - (37 * value) / max).toFixed(2)}`);
    });
    flush();
  }
  return svg;
}

// -- transfers -----------------------------------------------------------------------------

function drawTransfers(reports) {
  const rows = reports.map((r) => {
    if (r.unreachable) {
      return element("tr", { "data-member": r.node }, element("td", { class: "mono" }, r.node),
                     element("td", { colspan: 3 }, "did not answer"));
    }
    const moving = [
      ...r.sending.map((t) => `sends ${t.keys} keys to ${t.to}`),
      ...r.receiving.map((t) => `pulls ${t.ranges} ranges from ${t.from}`),
      ...r.waiting.map((t) => `keeps ${t.keys} keys for ${t.to}, which is down`),
    ];
    const rounds = (r.rounds || []).slice(0, 3).map((d) =>
      `${duration(d.ended_seconds_ago)} ago: ${d.full ? "full" : "periodic"}, ${d.seconds.toFixed(2)} s, ` +
      `${d.exchanges} exchanges${d.failures ? `, ${d.failures} failed` : ""}, ${d.keys_repaired} repaired` +
      `${d.keys_handed_off ? `, ${d.keys_handed_off} handed off` : ""}${d.complete ? "" : ", incomplete"}`);
    return element("tr", { "data-member": r.node },
      element("td", { class: "mono" }, swatch(r.node), " ", r.node),
      element("td", { class: "mono" }, r.ring + (r.settled === r.ring ? " settled" : "")),
      element("td", {}, moving.length ? moving.join("; ") : "nothing"),
      element("td", {}, rounds.length ? rounds.join(" | ") : "none yet"));
  });
  document.querySelector("#transfers tbody").replaceChildren(...rows);
}

// -- the key box ------------------------------------------------------------------------------

// The key's owners, as /dht/owners gives them, and its place on the ring; asked again
// when the key or the ring changes.
async function showKey(typed) {
  const key = document.getElementById("key").value;
  const shown = key + "\n" + (view.ring ? view.ring.checksum : "");
  if (!typed && shown === view.keyShown) return;
  view.keyShown = shown;
  const owners = document.getElementById("owners");
  const error = document.getElementById("key-error");
  const marker = document.getElementById("marker");
  if (!key) {
    owners.replaceChildren();
    error.textContent = "";
    if (marker) marker.replaceChildren();
    return;
  }
  try {
    const answer = await getJSON("dht/owners/" + encodeURIComponent(key) + "?format=json");
    if (document.getElementById("key").value !== key) return; // typed on meanwhile
    owners.replaceChildren(...answer.body.map((o) =>
      element("li", { "data-name": o.name }, swatch(o.name), `${o.name} ${o.host}:${o.port}`)));
    error.textContent = "";
    const position = Number(answer.headers.get("Gossipdht-Ring-Position"));
    if (marker && Number.isFinite(position)) {
      const [x0, y0] = point(position, 58), [x1, y1] = point(position, 118);
      marker.replaceChildren(
        element("svg:line", { class: "marker", x1: x0, y1: y0, x2: x1, y2: y1 }),
        element("svg:circle", { r: 3, cx: x1, cy: y1, fill: answer.body.length ? colour(answer.body[0].name) : "#000",
                                stroke: "#1d232b" }, element("svg:title", {}, key)));
    }
  } catch (e) {
    view.keyShown = null;
    owners.replaceChildren();
    error.textContent = e.message;
  }
}

// -- start -----------------------------------------------------------------------------------

document.getElementById("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  showKey(true);
});
document.getElementById("key").addEventListener("input", () => showKey(true));
document.getElementById("chart-node").addEventListener("change", () => {
  if (view.activity) drawCharts(view.activity);
});
document.getElementById("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, document.getElementById("token").value.trim());
  document.getElementById("token").value = "";
  document.getElementById("token-form").hidden = true;
  setStatus("token set", false);
});
refresh();
