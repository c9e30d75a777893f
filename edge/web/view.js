// kerasdance live view: the depth image, the 3-D skeleton and the tracker's figures, fed by /ws.
// Plain JavaScript, no library. Messages: see kerasdance_edge/webview.py.
//
// The skeleton view is an orthographic projection of the joints (camera metres: x right, y up, z away)
// turned about a vertical axis (yaw) and a horizontal one (pitch) through the point (0, 0, mean z of the
// joints). With yaw = pitch = 0 (the default, double-click to return) a joint (x, y, z) is drawn at
//   (W / 2 + s * x, H / 2 - s * y) CSS pixels of the canvas, s = H / METRES_ACROSS,
// the camera's own view. Joints are filled circles of JOINT_COLOUR (radius JOINT_RADIUS); bones are lines
// in a colour per person.
"use strict";

const METRES_ACROSS = 3.0;
const JOINT_COLOUR = "#ff00ff";
const JOINT_RADIUS = 4;
const BONE_COLOURS = ["#4fc3f7", "#ffb74d", "#81c784", "#e57373", "#fff176", "#90a4ae"];

const kdView = {
  hello: null,      // the server's hello message (joint names, bones)
  latest: null,     // the newest frame message received
  shown: null,      // the frame message on screen
  paused: false,
  yaw: 0,
  pitch: 0,
  received: 0,
  pause() { this.paused = true; el("pause").textContent = "resume"; },
  resume() { this.paused = false; el("pause").textContent = "pause"; if (this.latest) show(this.latest); },
  resetView() { this.yaw = 0; this.pitch = 0; drawSkeleton(); },
};
window.kdView = kdView;

function el(id) { return document.getElementById(id); }

function fmt(x, digits) { return x === null || x === undefined ? "-" : Number(x).toFixed(digits); }

// --- the depth image ----------------------------------------------------------------------------------------
const depthSmall = document.createElement("canvas");

function drawDepth(depth) {
  const canvas = el("depth");
  const ctx = canvas.getContext("2d");
  if (!depth) {
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    return;
  }
  const bytes = atob(depth.data);
  depthSmall.width = depth.width;
  depthSmall.height = depth.height;
  const sctx = depthSmall.getContext("2d");
  const img = sctx.createImageData(depth.width, depth.height);
  for (let i = 0; i < bytes.length; i++) {
    const v = bytes.charCodeAt(i);
    img.data[4 * i] = v;
    img.data[4 * i + 1] = v;
    img.data[4 * i + 2] = v;
    img.data[4 * i + 3] = 255;
  }
  sctx.putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(depthSmall, 0, 0, canvas.width, canvas.height);
}

// --- the skeleton -------------------------------------------------------------------------------------------
function project(p, pivotZ, width, height) {
  const s = height / METRES_ACROSS;
  const x = p[0], y = p[1], z = p[2] - pivotZ;
  const cy = Math.cos(kdView.yaw), sy = Math.sin(kdView.yaw);
  const x1 = cy * x + sy * z, z1 = -sy * x + cy * z;
  const cp = Math.cos(kdView.pitch), sp = Math.sin(kdView.pitch);
  const y2 = cp * y - sp * z1;
  return [width / 2 + s * x1, height / 2 - s * y2];
}

function finite(p) { return p && p.every((v) => v !== null && Number.isFinite(v)); }

function drawSkeleton() {
  const canvas = el("skeleton");
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, height = canvas.clientHeight;
  if (canvas.width !== Math.round(width * ratio)) {
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.fillStyle = "#111";
  ctx.fillRect(0, 0, width, height);
  // a faint cross through the pivot, turned with the view
  ctx.strokeStyle = "#2a2d33";
  ctx.lineWidth = 1;
  ctx.beginPath();
  ctx.moveTo(0, height / 2);
  ctx.lineTo(width, height / 2);
  ctx.moveTo(width / 2, 0);
  ctx.lineTo(width / 2, height);
  ctx.stroke();
  const frame = kdView.shown;
  if (!frame || !kdView.hello) return;
  const people = frame.people.filter((p) => p.joints);
  const zs = [];
  for (const person of people) {
    for (const p of Object.values(person.joints)) if (finite(p)) zs.push(p[2]);
  }
  if (!zs.length) return;
  const pivotZ = zs.reduce((a, b) => a + b, 0) / zs.length;
  people.forEach((person, k) => {
    const colour = BONE_COLOURS[(person.person === null || person.person === undefined ? k : person.person)
                                % BONE_COLOURS.length];
    const screen = {};
    for (const [name, p] of Object.entries(person.joints)) {
      if (finite(p)) screen[name] = project(p, pivotZ, width, height);
    }
    ctx.strokeStyle = colour;
    ctx.lineWidth = 3;
    ctx.lineCap = "round";
    ctx.beginPath();
    for (const [a, b] of kdView.hello.bones) {
      if (screen[a] && screen[b]) {
        ctx.moveTo(screen[a][0], screen[a][1]);
        ctx.lineTo(screen[b][0], screen[b][1]);
      }
    }
    ctx.stroke();
    ctx.fillStyle = JOINT_COLOUR;
    for (const q of Object.values(screen)) {
      ctx.beginPath();
      ctx.arc(q[0], q[1], JOINT_RADIUS, 0, 2 * Math.PI);
      ctx.fill();
    }
    if (person.person !== null && person.person !== undefined && screen.head) {
      ctx.fillStyle = colour;
      ctx.font = "14px system-ui, sans-serif";
      ctx.fillText("#" + person.person, screen.head[0] + 8, screen.head[1] - 8);
    }
  });
}

// --- the figures --------------------------------------------------------------------------------------------
function setBadge(node, text, kind) {
  node.textContent = text;
  node.className = "badge " + kind;
}

function drawInfo(frame) {
  const people = frame.people;
  const main = people.find((p) => p.state === "tracking") || people.find((p) => p.state === "warmup") || people[0];
  if (main) setBadge(el("state"), main.state, main.state);
  const moving = people.filter((p) => p.move_ready);
  const tag = (p) => (p.person === null || p.person === undefined ? "" : "#" + p.person + " ");
  el("move").textContent = moving.length ? moving.map((p) => tag(p) + p.move).join(", ") : "-";
  const conf = moving.length ? moving[0].confidence : 0;
  el("confidence").textContent = moving.length ? fmt(100 * conf, 0) + " %" : "";
  el("confidence-bar").style.width = Math.round(200 * (conf || 0)) + "px";
  const ids = people.filter((p) => p.person !== null && p.person !== undefined).map((p) => "#" + p.person);
  el("people").textContent = ids.length ? ids.join(" ") : String(people.filter((p) => p.joints_ready).length);
  el("frame").textContent = String(frame.index);
  const latency = main ? main.latency_ms : null;
  const stats = frame.stats;
  el("fps").textContent = stats ? fmt(stats.fps, 1) : "-";
  el("latency").textContent = fmt(latency, 1) + " ms" + (stats ? " (median " + fmt(stats.latency_ms_p50, 1) + " ms)" : "");
  if (stats) {
    const kinds = Object.entries(stats.faults).filter(([k, v]) => v && k !== "skipped_frames");
    el("faults").textContent = String(stats.faults_total) +
      (kinds.length ? " (" + kinds.map(([k, v]) => k.replace(/_/g, " ") + " " + v).join(", ") + ")" : "");
  }
}

function show(frame) {
  kdView.shown = frame;
  drawDepth(frame.depth);
  drawSkeleton();
  drawInfo(frame);
}

// --- the feed -----------------------------------------------------------------------------------------------
function connect() {
  const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
  ws.onopen = () => setBadge(el("connection"), "live", "live");
  ws.onmessage = (event) => {
    const msg = JSON.parse(event.data);
    if (msg.type === "hello") {
      kdView.hello = msg;
    } else if (msg.type === "frame") {
      kdView.latest = msg;
      kdView.received += 1;
      if (!kdView.paused) show(msg);
    }
  };
  ws.onclose = () => {
    setBadge(el("connection"), "disconnected: retrying", "off");
    setTimeout(connect, 1000);
  };
}

// --- turning the view ---------------------------------------------------------------------------------------
(function () {
  const canvas = el("skeleton");
  let drag = null;
  canvas.addEventListener("pointerdown", (e) => {
    drag = { x: e.clientX, y: e.clientY };
    canvas.setPointerCapture(e.pointerId);
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!drag) return;
    kdView.yaw += (e.clientX - drag.x) * 0.01;
    kdView.pitch = Math.max(-1.5, Math.min(1.5, kdView.pitch + (e.clientY - drag.y) * 0.01));
    drag = { x: e.clientX, y: e.clientY };
    drawSkeleton();
  });
  canvas.addEventListener("pointerup", () => { drag = null; });
  canvas.addEventListener("dblclick", () => kdView.resetView());
  el("pause").addEventListener("click", () => (kdView.paused ? kdView.resume() : kdView.pause()));
  document.addEventListener("keydown", (e) => {
    if (e.code === "Space") {
      e.preventDefault();
      if (kdView.paused) kdView.resume(); else kdView.pause();
    }
  });
})();

drawSkeleton();
connect();
