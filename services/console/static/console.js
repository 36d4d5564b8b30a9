// The dashboard's stream figures, refreshed every 2 s.
(function () {
  var table = document.getElementById("streams");
  if (!table) return;
  function refresh() {
    fetch("/api/streams", { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (rows) {
      rows.forEach(function (s) {
        var tr = table.querySelector('tr[data-stream="' + s.name + '"]');
        if (!tr) return;
        tr.querySelector(".msgs").textContent = s.messages;
        tr.querySelector(".bytes").textContent = s.bytes;
        tr.querySelector(".last").textContent = s.last;
      });
    }).catch(function () {});
  }
  setInterval(refresh, 2000);
})();

// A flow's drain after activation: the progress bar and the backlog over
// time, from /api/flows/progress every second.
(function () {
  var box = document.getElementById("drain");
  if (!box) return;
  var flow = box.getAttribute("data-flow");
  var bar = document.getElementById("bar"), text = document.getElementById("drain-text");
  var state = document.getElementById("drain-state"), line = document.getElementById("spark-line");
  function refresh() {
    fetch("/api/flows/progress?flow=" + encodeURIComponent(flow), { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (p) {
      bar.value = p.percent;
      state.textContent = p.state;
      var eta = p.eta_sec > 0 ? Math.round(p.eta_sec) + " s" : "-";
      text.textContent = p.done + "/" + p.total + " done, " + p.remaining + " waiting, " + p.in_flight + " in flight, " +
        Math.round(p.rate_per_sec) + " msg/s, ETA " + eta + (p.state === "active" && p.remaining === 0 ? " (drained)" : "");
      var s = p.samples || [], max = 1;
      s.forEach(function (x) { if (x.left > max) max = x.left; });
      var t0 = s.length ? Date.parse(s[0].at) : 0, t1 = s.length ? Date.parse(s[s.length - 1].at) : 1, span = Math.max(t1 - t0, 1);
      line.setAttribute("points", s.map(function (x) {
        return Math.round((Date.parse(x.at) - t0) / span * 600) + "," + Math.round(78 - x.left / max * 76);
      }).join(" "));
    }).catch(function () {});
  }
  refresh();
  setInterval(refresh, 1000);
})();

// Every flow's figures on the flows dashboard and the cutover page, from
// /api/flows every 2 s: each cell with a data-k takes the server's text
// for it, and the cutover form offers the states the flow is not in.
(function () {
  var tables = [document.getElementById("flowfigs"), document.getElementById("flows")].filter(Boolean);
  if (!tables.length) return;
  function refresh() {
    fetch("/api/flows", { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (a) {
      (a.flows || []).forEach(function (f) {
        tables.forEach(function (table) {
          var tr = table.querySelector('tr[data-flow="' + f.flow + '"]');
          if (!tr) return;
          tr.querySelectorAll("[data-k]").forEach(function (td) {
            var v = f.cells[td.getAttribute("data-k")];
            if (v !== undefined && td.textContent !== v) td.textContent = v;
          });
          tr.querySelectorAll('button[name="state"]').forEach(function (b) { b.hidden = b.value === f.state; });
        });
      });
    }).catch(function () {});
  }
  setInterval(refresh, 2000);
})();
