/* Publishing form: saves the draft on the server as the person types (the plain "Enregistrer le brouillon"
   button does the same without JavaScript), fills the name lists (communes, organisations) from the
   official geography, and moves the focus to the error summary. No inline script: CSP without unsafe-inline. */
(function () {
  "use strict";
  var form = document.getElementById("draft-form");
  var status = document.getElementById("autosave-status");
  var timer = null;
  var dirty = false;

  function say(text) { if (status) { status.textContent = text; } }

  function save() {
    if (!form || !dirty) { return; }
    dirty = false;
    var body = new FormData(form);
    body.delete("action");
    fetch(form.getAttribute("data-autosave"), { method: "POST", body: body, credentials: "same-origin" })
      .then(function (r) { return r.json().then(function (j) { return [r.status, j]; }); })
      .then(function (res) {
        if (res[0] === 200 && res[1].saved) {
          say("Brouillon enregistré à " + new Date().toLocaleTimeString("fr-FR"));
        } else {
          dirty = true;
          say(res[1].message || "Brouillon non enregistré : utilisez le bouton « Enregistrer le brouillon ».");
        }
      })
      .catch(function () { dirty = true; say("Brouillon non enregistré (connexion perdue) : votre texte reste dans la page."); });
  }

  if (form && form.getAttribute("data-autosave")) {
    var changed = function () { dirty = true; clearTimeout(timer); timer = setTimeout(save, 800); };
    form.addEventListener("input", changed);
    form.addEventListener("change", changed);
    window.addEventListener("pagehide", function () {
      if (!dirty) { return; }
      var body = new FormData(form);
      body.delete("action");
      if (navigator.sendBeacon) { navigator.sendBeacon(form.getAttribute("data-autosave"), body); }
    });
  }

  /* Name lists: typing a name asks the server for matching communes or organisations. */
  Array.prototype.forEach.call(document.querySelectorAll("input[data-lookup][list]"), function (input) {
    var list = document.getElementById(input.getAttribute("list"));
    var pending = null;
    input.addEventListener("input", function () {
      clearTimeout(pending);
      var q = input.value;
      if (q.length < 2) { return; }
      pending = setTimeout(function () {
        fetch(input.getAttribute("data-lookup") + "?q=" + encodeURIComponent(q), { credentials: "same-origin" })
          .then(function (r) { return r.json(); })
          .then(function (items) {
            while (list.firstChild) { list.removeChild(list.firstChild); }
            (items.results || []).forEach(function (item) {
              var option = document.createElement("option");
              option.value = item.label;
              list.appendChild(option);
            });
          })
          .catch(function () {});
      }, 200);
    });
  });

  var summary = document.getElementById("errors") || document.getElementById("relogin-title");
  if (summary) { summary.focus(); }
})();
