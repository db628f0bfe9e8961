(function () {
  "use strict";
  var bar = document.getElementById("filters");
  if (!bar) { return; }
  bar.hidden = false;
  var sel = {code: document.getElementById("f-code"), key: document.getElementById("f-key"), severity: document.getElementById("f-sev")};
  var rows = document.querySelectorAll("#findings-table tbody tr");
  var shown = document.getElementById("f-shown");
  function apply() {
    var n = 0;
    for (var i = 0; i < rows.length; i++) {
      var r = rows[i], ok = true;
      for (var k in sel) {
        if (sel[k] && sel[k].value && r.getAttribute("data-" + k) !== sel[k].value) { ok = false; }
      }
      r.hidden = !ok;
      if (ok) { n++; }
    }
    shown.textContent = n + " of " + rows.length + " shown";
  }
  for (var k in sel) { if (sel[k]) { sel[k].addEventListener("change", apply); } }
  var all = document.getElementById("expand-all");
  if (all && document.querySelector("details.example")) {
    all.hidden = false;
    all.addEventListener("click", function () {
      var ds = document.querySelectorAll("details.example, details.example details");
      for (var i = 0; i < ds.length; i++) { ds[i].open = true; }
    });
  }
  apply();
})();
