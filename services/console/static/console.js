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
