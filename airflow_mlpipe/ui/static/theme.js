/* Light or dark, as the Airflow UI around this page is (its <html> class), else as the user chose in Airflow
   (localStorage "theme"), else as the system prefers; followed live while Airflow's toggle is used. */
(function () {
  var root = document.documentElement;
  function parentMode() {
    try {
      var p = window.parent && window.parent !== window && window.parent.document.documentElement;
      if (p && p.classList.contains("dark")) return "dark";
      if (p && p.classList.contains("light")) return "light";
    } catch (e) { /* another origin: no access */ }
    return null;
  }
  function chosen() {
    try {
      var t = window.localStorage.getItem("theme");
      if (t === "dark" || t === "light") return t;
    } catch (e) { /* storage blocked */ }
    return null;
  }
  function apply() {
    var mode = parentMode() || chosen() ||
      (window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light");
    if (root.dataset.theme !== mode) {
      root.dataset.theme = mode;
      document.dispatchEvent(new CustomEvent("mlpipe-theme", { detail: mode }));
    }
  }
  apply();
  try {
    if (window.parent && window.parent !== window) {
      new MutationObserver(apply).observe(window.parent.document.documentElement, { attributes: true, attributeFilter: ["class"] });
    }
  } catch (e) { /* another origin */ }
  if (window.matchMedia) window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", apply);
  window.addEventListener("storage", apply);
})();
