// The mesh page: polls /ui/api/meshes and draws each mesh as a graph of
// topics and functions laid out in one lane per cluster. Rates are counter
// changes over the samples of the last few seconds. Everything the server
// sends is put in the page as text, never as markup.
"use strict";

const POLL_MS = 1000;
const RATE_WINDOW_MS = 5000;
const SVG = "http://www.w3.org/2000/svg";

// samples[key] holds recent {t, received, processed} samples of one
// function ("tenant/ns/mesh/fn") or instance ("…/fn#index").
const samples = new Map();
let polls = 0;

function token() {
  const m = /(?:^|[#&])token=([^&]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem("meshfed-token", decodeURIComponent(m[1]));
    // Keep the token out of the address bar (and of bookmarks).
    window.history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem("meshfed-token") || "";
}

async function poll() {
  const status = document.getElementById("status");
  try {
    const headers = {};
    const t = token();
    if (t) headers.Authorization = "Bearer " + t;
    const resp = await fetch("api/meshes" + location.search, { headers, cache: "no-store" });
    const body = await resp.json().catch(() => ({ reason: resp.statusText }));
    if (resp.status === 401 || resp.status === 403) {
      showLogin(body.reason || resp.statusText);
      throw new Error(body.reason || resp.statusText);
    }
    if (!resp.ok) throw new Error(body.reason || resp.statusText);
    document.getElementById("login").hidden = true;
    render(body);
    polls++;
    document.body.dataset.polls = String(polls);
    status.className = "";
    status.textContent = "updated " + new Date(body.time).toLocaleTimeString();
  } catch (e) {
    status.className = "error";
    status.textContent = "cannot read the federation: " + e.message;
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

function showLogin(reason) {
  const form = document.getElementById("login");
  form.hidden = false;
  document.getElementById("login-reason").textContent = reason;
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("login").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem("meshfed-token", document.getElementById("token").value.trim());
  });
  poll();
});

// sample records counters at time t and returns the rates over the window.
function sample(key, t, received, processed) {
  let hs = samples.get(key) || [];
  if (hs.length && (received < hs[hs.length - 1].received || processed < hs[hs.length - 1].processed)) {
    hs = []; // counters went back: the instance restarted
  }
  hs.push({ t, received, processed });
  while (hs.length > 2 && t - hs[1].t >= RATE_WINDOW_MS) hs.shift();
  samples.set(key, hs);
  const first = hs[0];
  const dt = (t - first.t) / 1000;
  if (dt <= 0) return { in: null, out: null };
  return { in: (received - first.received) / dt, out: (processed - first.processed) / dt };
}

function fmtRate(r) {
  if (r === null || r === undefined) return "–";
  return (r >= 100 ? r.toFixed(0) : r.toFixed(1)) + "/s";
}

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  if (text !== undefined) e.textContent = text;
  return e;
}

function sv(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  if (text !== undefined) e.textContent = text;
  return e;
}

function render(view) {
  const t = Date.parse(view.time);
  renderFederation(view);
  const main = document.getElementById("meshes");
  main.replaceChildren();
  if (!view.meshes.length) main.append(el("p", { class: "mesh" }, "No function mesh yet."));
  for (const m of view.meshes) main.append(renderMesh(view, m, t));
}

function renderFederation(view) {
  const fed = document.getElementById("federation");
  fed.replaceChildren();
  for (const c of view.clusters) {
    const health = c.health || "Unknown";
    const box = el("div", { class: "cluster h-" + health, "data-cluster": c.name, "data-health": health });
    const h = el("h3", {}, "cluster " + c.name + " ");
    h.append(el("span", { class: "badge cl " + health }, health));
    box.append(h);
    if (c.region) box.append(el("div", { class: "agents" }, "region " + c.region));
    const agents = view.agents.filter((a) => a.cluster === c.name);
    const line = agents.length ? agents.map((a) => a.name + " (" + a.state + ")").join(", ") : "no agent";
    box.append(el("div", { class: "agents" }, line));
    if (c.reason && health !== "Healthy") box.append(el("div", { class: "agents" }, c.reason));
    fed.append(box);
  }
  if (view.hidden && view.hidden.length) {
    fed.append(el("div", { class: "cluster" }, "not shown to you: " + view.hidden.join(", ")));
  }
}

function renderMesh(view, m, t) {
  const id = m.tenant + "/" + m.namespace + "/" + m.name;
  const box = el("section", { class: "mesh m-" + m.health, "data-mesh": id, "data-health": m.health });
  const h = el("h2", {}, id + " ");
  h.append(el("span", { class: "badge " + m.health }, m.health));
  if (m.failedOver) h.append(el("span", { class: "badge Degraded" }, "failed over"));
  box.append(h);
  if (m.message) box.append(el("div", { class: "msg" }, m.message));
  const rates = new Map();
  for (const f of m.functions) {
    rates.set(f.name, sample(id + "/" + f.name, t, f.received, f.processed));
    for (const i of f.instances) {
      rates.set(f.name + "#" + i.index, sample(id + "/" + f.name + "#" + i.index, t, i.received, i.processed));
    }
  }
  const graph = el("div", { class: "graph" });
  graph.append(drawGraph(view, m, rates));
  box.append(graph);
  box.append(instanceTable(id, m, rates));
  return box;
}

// layout places topics and functions in layers (left to right along the
// flow) and lanes (one per cluster, top to bottom).
function layout(view, m) {
  const lanes = view.clusters.map((c) => c.name);
  const addLane = (c) => { if (c && !lanes.includes(c)) lanes.push(c); };
  const topics = new Map(); // "cluster|topic" -> node
  const topic = (cluster, name) => {
    const k = cluster + "|" + name;
    if (!topics.has(k)) topics.set(k, { kind: "topic", key: k, cluster, name, layer: 0 });
    addLane(cluster);
    return topics.get(k);
  };
  const fns = m.functions.map((f) => {
    addLane(f.runsIn);
    return {
      kind: "fn", key: "fn|" + f.name, cluster: f.runsIn, f, layer: 1,
      ins: f.inputs.map((n) => topic(f.inputCluster, n)),
      out: f.output ? topic(f.outputCluster, f.output) : null,
    };
  });
  // Longest path from the sources; bounded, so a cycle cannot loop.
  for (let round = 0; round <= fns.length; round++) {
    let changed = false;
    for (const n of fns) {
      const l = Math.max(0, ...n.ins.map((i) => i.layer)) + 1;
      if (l > n.layer) { n.layer = l; changed = true; }
      if (n.out && n.out.layer < n.layer + 1) { n.out.layer = n.layer + 1; changed = true; }
    }
    if (!changed) break;
  }
  const nodes = [...topics.values(), ...fns];
  for (const n of nodes) {
    n.w = n.kind === "fn" ? 190 : 140;
    n.h = n.kind === "fn" ? 50 + 16 * Math.max(1, n.f.instances.length) : 30;
  }
  // Lane heights: the tallest stack of nodes in one layer of the lane.
  const laneOf = new Map(lanes.map((c, i) => [c, i]));
  const stacks = new Map();
  for (const n of nodes) {
    const k = n.cluster + "|" + n.layer;
    if (!stacks.has(k)) stacks.set(k, []);
    stacks.get(k).push(n);
  }
  const laneH = lanes.map(() => 60);
  for (const [k, ns] of stacks) {
    const lane = laneOf.get(k.slice(0, k.lastIndexOf("|")));
    laneH[lane] = Math.max(laneH[lane], 30 + ns.reduce((s, n) => s + n.h + 14, 0));
  }
  const laneY = [];
  let y = 10;
  for (const h of laneH) { laneY.push(y); y += h + 10; }
  // Each layer is as wide as its widest node, plus room for edge labels.
  const LEFT = 100, GAP = 60;
  const layerX = [];
  const layerW = [];
  for (const n of nodes) layerW[n.layer] = Math.max(layerW[n.layer] || 0, n.w);
  let x = LEFT;
  for (let l = 0; l < layerW.length; l++) { layerX.push(x); x += (layerW[l] || 0) + GAP; }
  for (const ns of stacks.values()) {
    let ny = laneY[laneOf.get(ns[0].cluster)] + 24;
    for (const n of ns) {
      n.x = layerX[n.layer];
      n.y = ny;
      ny += n.h + 14;
    }
  }
  const width = Math.max(600, ...nodes.map((n) => n.x + n.w + 20));
  return { lanes, laneY, laneH, nodes, fns, width, height: y };
}

function drawGraph(view, m, rates) {
  const L = layout(view, m);
  const svg = sv("svg", { width: L.width, height: L.height, viewBox: `0 0 ${L.width} ${L.height}`, role: "img", "aria-label": "graph of mesh " + m.name });
  const defs = sv("defs");
  const marker = sv("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" });
  marker.append(sv("path", { d: "M0,0 L10,5 L0,10 z", fill: "#78909c" }));
  defs.append(marker);
  svg.append(defs);
  const health = new Map(view.clusters.map((c) => [c.name, c.health || "Unknown"]));
  L.lanes.forEach((c, i) => {
    const g = sv("g", { class: "lane", "data-cluster": c, "data-health": health.get(c) || "Unknown" });
    g.append(sv("rect", { class: "lane-bg", x: 4, y: L.laneY[i], width: L.width - 8, height: L.laneH[i], rx: 6 }));
    g.append(sv("text", { class: "lane-label", x: 14, y: L.laneY[i] + 20 }, "cluster " + c));
    g.append(sv("text", { class: "meta", x: 14, y: L.laneY[i] + 36 }, health.get(c) || "unknown"));
    svg.append(g);
  });
  const edges = sv("g", { class: "edges" });
  svg.append(edges);
  const edge = (a, b, label) => {
    const x1 = a.x + a.w, y1 = a.y + Math.min(a.h, 30) / 2, x2 = b.x, y2 = b.y + Math.min(b.h, 30) / 2;
    const mx = (x1 + x2) / 2;
    const cross = a.cluster !== b.cluster;
    edges.append(sv("path", { class: "edge" + (cross ? " cross" : ""), d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`, "marker-end": "url(#arrow)" }));
    edges.append(sv("text", { class: "edge-label", x: mx - 20, y: (y1 + y2) / 2 - 4 }, label));
  };
  for (const n of L.fns) {
    const r = rates.get(n.f.name);
    for (const i of n.ins) edge(i, n, fmtRate(r.in));
    if (n.out) edge(n, n.out, fmtRate(r.out));
  }
  for (const n of L.nodes) svg.append(n.kind === "fn" ? drawFunction(n, rates) : drawTopic(n));
  return svg;
}

function drawTopic(n) {
  const g = sv("g", { class: "topic", "data-topic": n.name, "data-cluster": n.cluster, transform: `translate(${n.x},${n.y})` });
  g.append(sv("title", {}, n.name + " in cluster " + n.cluster));
  g.append(sv("rect", { width: n.w, height: n.h, rx: 15 }));
  const short = n.name.slice(n.name.lastIndexOf("/") + 1);
  g.append(sv("text", { x: 12, y: 19 }, short.length > 19 ? short.slice(0, 18) + "…" : short));
  return g;
}

function drawFunction(n, rates) {
  const f = n.f, r = rates.get(f.name);
  const g = sv("g", {
    class: "fn", "data-function": f.name, "data-cluster": f.runsIn, "data-home": f.home,
    "data-received": f.received, "data-processed": f.processed, transform: `translate(${n.x},${n.y})`,
  });
  g.append(sv("title", {}, `${f.name}: ${f.runtime}, ${f.guarantee}, ${f.readyReplicas}/${f.replicas} ready`));
  g.append(sv("rect", { class: "box", width: n.w, height: n.h, rx: 4 }));
  g.append(sv("text", { class: "title", x: 10, y: 17 }, f.name + (f.runsIn !== f.home ? " (home " + f.home + ")" : "")));
  g.append(sv("text", { class: "meta rate", x: 10, y: 33, "data-rate-in": r.in ?? "", "data-rate-out": r.out ?? "" },
    `received ${fmtRate(r.in)} · done ${fmtRate(r.out)}`));
  const list = f.instances.length ? f.instances : [{ index: -1, state: "Pending", agent: "" }];
  list.forEach((i, k) => {
    const ig = sv("g", { class: "inst " + i.state, "data-index": i.index, "data-agent": i.agent || "", "data-cluster": i.cluster || "", "data-state": i.state, transform: `translate(8,${42 + 16 * k})` });
    ig.append(sv("rect", { width: n.w - 16, height: 14, rx: 3 }));
    const who = i.index < 0 ? "not placed" : `#${i.index} ${i.agent || "unassigned"} · ${i.state}`;
    ig.append(sv("text", { x: 4, y: 11 }, who));
    g.append(ig);
  });
  return g;
}

function instanceTable(id, m, rates) {
  const table = el("table", { class: "instances" });
  const head = el("tr");
  for (const h of ["function", "instance", "cluster", "agent", "state", "received", "processed", "failed", "received/s", "processed/s", "last error"]) head.append(el("th", {}, h));
  table.append(head);
  for (const f of m.functions) {
    for (const i of f.instances) {
      const r = rates.get(f.name + "#" + i.index);
      const tr = el("tr", { class: "instance", "data-mesh": id, "data-function": f.name, "data-index": i.index, "data-cluster": i.cluster || "", "data-agent": i.agent || "", "data-state": i.state });
      tr.append(el("td", {}, f.name), el("td", { class: "num" }, String(i.index)), el("td", {}, i.cluster || "–"), el("td", {}, i.agent || "–"),
        el("td", {}, i.state), el("td", { class: "num received" }, String(i.received)), el("td", { class: "num processed" }, String(i.processed)),
        el("td", { class: "num" }, String(i.failed)), el("td", { class: "num" }, fmtRate(r.in)), el("td", { class: "num" }, fmtRate(r.out)),
        el("td", {}, i.lastError || ""));
      table.append(tr);
    }
  }
  return table;
}
