(function () {
  "use strict";
  var zone = document.getElementById("drop");
  var input = document.getElementById("files");
  var list = document.getElementById("file-list");
  if (!zone || !input) { return; }
  function show() {
    while (list.firstChild) { list.removeChild(list.firstChild); }
    for (var i = 0; i < input.files.length; i++) {
      var li = document.createElement("li");
      li.textContent = input.files[i].name + " (" + input.files[i].size + " bytes)";
      list.appendChild(li);
    }
  }
  zone.addEventListener("dragover", function (e) { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", function () { zone.classList.remove("over"); });
  zone.addEventListener("drop", function (e) {
    e.preventDefault();
    zone.classList.remove("over");
    if (e.dataTransfer && e.dataTransfer.files.length) { input.files = e.dataTransfer.files; show(); }
  });
  input.addEventListener("change", show);
  var hint = document.getElementById("drop-hint");
  if (hint) { hint.hidden = false; }
})();
